//! One-click unsubscribe links (RFC 8058) for the emails sent to subscribers.
//!
//! When the deployment has a public base URL ([`NotifySettings::public_base_url`]), every email
//! to a subscriber carries `List-Unsubscribe: <{base}/api/v1/notify/unsubscribe?token=...>` and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. The token names the subscriber and a
//! [`Scope`]: the message's topic when it has one (the click opts out of that topic's emails
//! only), else the email channel (the click opts out of every email without a topic preference
//! of its own). A POST to the link writes the opt-out into the subscriber's preferences, the
//! document `PUT /subscribers/{id}/preferences` manages, so the next message is `suppressed`.
//!
//! **Tokens** are `v1.<b64url(subscriber id)>.<b64url(scope)>.<b64url(tag)>` with
//! `tag = HMAC-SHA256(k, "v1.<b64url(subscriber id)>.<b64url(scope)>")` and
//! `k = HMAC-SHA256(token_secret, "praxis-notify unsubscribe token v1")`: not guessable, not
//! forgeable without the secret, checked in constant time. They do not expire (an email may be
//! opened years later and the link must still work, as mailbox providers expect); they change
//! when the webhook secret does, and a subscriber can opt in again through the preferences API.
//!
//! [`NotifySettings::public_base_url`]: crate::settings::NotifySettings::public_base_url

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::channel::Channel;
use crate::domain::model::Preferences;

/// The route of the links, under the public base URL.
pub const PATH: &str = "/api/v1/notify/unsubscribe";
/// Version prefix of the tokens.
const VERSION: &str = "v1";
/// Longest token looked at (a subscriber id and a topic key are at most a few hundred bytes).
pub const MAX_TOKEN: usize = 1024;

/// What a link opts the subscriber out of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Email overall (`channels.email = false`).
    Email,
    /// The emails of one topic (`topics.<topic>.email = false`).
    Topic(String),
}

impl Scope {
    /// The scope of the link in a message about `topic` (or about none).
    pub fn for_topic(topic: Option<&str>) -> Scope {
        match topic {
            Some(t) => Scope::Topic(t.to_owned()),
            None => Scope::Email,
        }
    }

    /// The topic, if the scope is one.
    pub fn topic(&self) -> Option<&str> {
        match self {
            Scope::Email => None,
            Scope::Topic(t) => Some(t),
        }
    }

    fn encode(&self) -> String {
        match self {
            Scope::Email => "email".to_owned(),
            Scope::Topic(t) => format!("topic:{t}"),
        }
    }

    fn decode(text: &str) -> Option<Scope> {
        match text {
            "email" => Some(Scope::Email),
            _ => text
                .strip_prefix("topic:")
                .filter(|t| !t.is_empty())
                .map(|t| Scope::Topic(t.to_owned())),
        }
    }

    /// Writes the opt-out into `prefs`; returns whether it changed anything.
    pub fn apply(&self, prefs: &mut Preferences) -> bool {
        let previous = match self {
            Scope::Email => prefs.channels.insert(Channel::Email, false),
            Scope::Topic(t) => prefs
                .topics
                .entry(t.clone())
                .or_default()
                .insert(Channel::Email, false),
        };
        previous != Some(false)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the token's shape (or too long).
    #[error("the unsubscribe token is malformed")]
    Malformed,
    /// Well formed, but the signature does not match: tampered with, or made with another
    /// secret.
    #[error("the unsubscribe token is not valid (tampered with, or made with another secret)")]
    BadSignature,
}

/// Signs and checks unsubscribe tokens (see the [module docs](self)).
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

impl Signer {
    /// The signer of the deployment whose server-only token secret is `token_secret`
    /// ([`crate::NotifySettings::token_secret`]).
    pub fn new(token_secret: &str) -> Signer {
        let mut mac = hmac(token_secret.trim().as_bytes());
        mac.update(b"praxis-notify unsubscribe token v1");
        Signer {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = hmac(&self.key);
        mac.update(signed.as_bytes());
        mac
    }

    /// The token of `subscriber_id` and `scope` (URL-safe: `A-Z a-z 0-9 - _ .`).
    pub fn token(&self, subscriber_id: &str, scope: &Scope) -> String {
        let signed = format!(
            "{VERSION}.{}.{}",
            URL_SAFE_NO_PAD.encode(subscriber_id),
            URL_SAFE_NO_PAD.encode(scope.encode())
        );
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&signed).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The subscriber and scope of a token this signer made.
    pub fn verify(&self, token: &str) -> Result<(String, Scope), TokenError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mut parts = signed.split('.');
        let (Some(VERSION), Some(subscriber), Some(scope), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(signed)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        // Signed by us: what follows can only fail for a token of a future format.
        let text = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        };
        let subscriber = text(subscriber).ok_or(TokenError::Malformed)?;
        let scope = text(scope)
            .as_deref()
            .and_then(Scope::decode)
            .ok_or(TokenError::Malformed)?;
        Ok((subscriber, scope))
    }
}

/// Checks a public base URL: absolute `http(s)`, with a host, no query or fragment.
pub fn check_base_url(text: &str) -> Result<url::Url, String> {
    let bad = |why: &str| {
        format!(
            "{text:?} is not a usable base URL: {why} (expected e.g. https://notify.example.com)"
        )
    };
    let url = url::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    Ok(url)
}

/// Makes the unsubscribe links of one deployment.
#[derive(Debug, Clone)]
pub struct Links {
    signer: Signer,
    /// `{base without its final /}/api/v1/notify/unsubscribe`.
    endpoint: String,
}

impl Links {
    /// Links under `public_base_url` (checked with [`check_base_url`]), signed with a key
    /// derived from `token_secret`.
    pub fn new(public_base_url: &str, token_secret: &str) -> Result<Links, String> {
        let base = check_base_url(public_base_url)?;
        Ok(Links {
            signer: Signer::new(token_secret),
            endpoint: format!("{}{PATH}", base.as_str().trim_end_matches('/')),
        })
    }

    /// The one-click link of `subscriber_id` for `scope`.
    pub fn url(&self, subscriber_id: &str, scope: &Scope) -> String {
        format!(
            "{}?token={}",
            self.endpoint,
            self.signer.token(subscriber_id, scope)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn tokens_round_trip_and_are_url_safe() {
        let s = Signer::new(SECRET);
        for (id, scope) in [
            ("u1", Scope::Email),
            ("ada@example.org", Scope::Topic("marketing".into())),
            ("a:b+c", Scope::Topic("news.weekly:eu".into())),
        ] {
            let token = s.token(id, &scope);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
                "{token}"
            );
            assert_eq!(s.verify(&token), Ok((id.to_owned(), scope.clone())));
            // Same input, same token (a link is stable across retries of the email).
            assert_eq!(s.token(id, &scope), token);
        }
    }

    #[test]
    fn tampered_and_foreign_tokens_are_refused() {
        let s = Signer::new(SECRET);
        let token = s.token("u1", &Scope::Email);
        // Another subscriber's id under u1's signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("u2"),
            parts[2],
            parts[3]
        );
        assert_eq!(s.verify(&forged), Err(TokenError::BadSignature));
        // A topic link turned into an all-email link.
        let topic = s.token("u1", &Scope::Topic("marketing".into()));
        let tp: Vec<&str> = topic.split('.').collect();
        let widened = format!("{}.{}.{}.{}", tp[0], tp[1], parts[2], tp[3]);
        assert_eq!(s.verify(&widened), Err(TokenError::BadSignature));
        // One character of the tag changed.
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(s.verify(&flipped), Err(TokenError::BadSignature));
        // Made with another secret.
        let other = Signer::new("whsec_QWxhZGRpbjpvcGVuIHNlc2FtZSBvcGVuIHNlc2FtZQ");
        assert_eq!(
            other.verify(&token),
            Err(TokenError::BadSignature),
            "another deployment's token"
        );
        for bad in [
            "",
            "v1",
            "v1.a.b",
            "v2.a.b.c",
            "v1.a.b.c.d",
            "v1.a.b.!!",
            &"a".repeat(MAX_TOKEN + 1),
        ] {
            assert_eq!(s.verify(bad), Err(TokenError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn links_join_the_base_url() {
        for base in ["https://notify.example.com", "https://notify.example.com/"] {
            let l = Links::new(base, SECRET).expect("links");
            let url = l.url("u1", &Scope::Email);
            assert!(
                url.starts_with("https://notify.example.com/api/v1/notify/unsubscribe?token=v1."),
                "{url}"
            );
        }
        let l = Links::new("http://127.0.0.1:8080/praxis/", SECRET).expect("links");
        assert!(
            l.url("u1", &Scope::Email)
                .starts_with("http://127.0.0.1:8080/praxis/api/v1/notify/unsubscribe?token=")
        );
        for bad in [
            "notify.example.com",
            "ftp://x",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            assert!(Links::new(bad, SECRET).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_write_the_narrowest_opt_out() {
        let mut p = Preferences::default();
        assert!(Scope::Topic("marketing".into()).apply(&mut p));
        assert!(p.opted_out(Channel::Email, Some("marketing")).is_some());
        assert!(p.opted_out(Channel::Email, None).is_none());
        assert!(p.opted_out(Channel::InApp, Some("marketing")).is_none());
        assert!(
            !Scope::Topic("marketing".into()).apply(&mut p),
            "idempotent"
        );
        assert!(Scope::Email.apply(&mut p));
        assert!(p.opted_out(Channel::Email, None).is_some());
        assert!(!Scope::Email.apply(&mut p), "idempotent");
        assert_eq!(Scope::decode("topic:"), None);
        assert_eq!(Scope::decode("sms"), None);
    }
}
