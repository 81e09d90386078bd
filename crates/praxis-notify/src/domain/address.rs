//! Syntax checks of addresses and names, shared by the send route and the subscriber routes.
//! Each check returns the address in its stored form or a message saying what is wrong
//! (lowercase prose, for a problem's field error).

use std::str::FromStr;

use crate::domain::channel::Channel;

/// Longest subscriber id.
pub const MAX_SUBSCRIBER_ID: usize = 128;
/// Longest template name.
pub const MAX_TEMPLATE_NAME: usize = 64;
/// Longest push token.
pub const MAX_PUSH_TOKEN: usize = 4096;
/// Longest webhook URL.
pub const MAX_URL: usize = 2048;

/// An email address as RFC 5321 allows it (what lettre accepts), at most 254 characters.
pub fn email(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || t.len() > 254 {
        return Err("must be an email address of 1 to 254 characters".into());
    }
    let address =
        lettre::Address::from_str(t).map_err(|e| format!("{t:?} is not an email address ({e})"))?;
    if !address.domain().contains('.') && address.domain() != "localhost" {
        return Err(format!(
            "{t:?} is not an email address (the domain has no dot)"
        ));
    }
    Ok(t.to_owned())
}

/// An email sender, `addr@example.com` or `Name <addr@example.com>` (what lettre parses as a
/// mailbox).
pub fn sender(text: &str) -> Result<String, String> {
    let t = text.trim();
    t.parse::<lettre::message::Mailbox>()
        .map(|_| t.to_owned())
        .map_err(|e| {
            format!(
                "{t:?} is not a sender address ({e}; expected e.g. \"Acme <notify@acme.example>\")"
            )
        })
}

/// An `http` or `https` URL with a host, at most [`MAX_URL`] characters.
pub fn webhook_url(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || t.len() > MAX_URL {
        return Err(format!(
            "must be an http(s) URL of 1 to {MAX_URL} characters"
        ));
    }
    let url = url::Url::parse(t).map_err(|e| format!("{t:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{t:?} is not an http(s) URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{t:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry credentials (user:password@); receivers check the signature".into(),
        );
    }
    Ok(url.to_string())
}

/// A phone number in E.164 form: `+` and 8 to 15 digits (spaces, dashes, dots and brackets are
/// removed first).
pub fn phone(text: &str) -> Result<String, String> {
    let compact: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    if !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(format!(
            "{:?} is not a phone number in E.164 form (e.g. +14155550123)",
            truncate(text)
        ));
    }
    Ok(compact)
}

/// A push token: 1 to [`MAX_PUSH_TOKEN`] visible ASCII characters.
pub fn push_token(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || t.len() > MAX_PUSH_TOKEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "must be 1 to {MAX_PUSH_TOKEN} visible ASCII characters"
        ));
    }
    Ok(t.to_owned())
}

/// A subscriber id: 1 to 128 of `A-Z a-z 0-9 _ - . @ : +`.
pub fn subscriber_id(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_SUBSCRIBER_ID
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@' | b':' | b'+')
        });
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{:?} is not a subscriber id (1 to {MAX_SUBSCRIBER_ID} of A-Z a-z 0-9 _ - . @ : +)",
            truncate(text)
        ))
    }
}

/// A template name: 1 to 64 of `a-z 0-9 _ - .`, starting with a letter or digit.
pub fn template_name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_TEMPLATE_NAME
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && text.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        });
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{:?} is not a template name (1 to {MAX_TEMPLATE_NAME} of a-z 0-9 _ - ., starting with a letter or digit)",
            truncate(text)
        ))
    }
}

/// An IANA time zone name known to the bundled database (`Europe/Paris`, `UTC`).
pub fn timezone(text: &str) -> Result<String, String> {
    let t = text.trim();
    jiff::tz::TimeZone::get(t)
        .map(|_| t.to_owned())
        .map_err(|_| {
            format!(
                "{:?} is not an IANA time zone (e.g. Europe/Paris)",
                truncate(t)
            )
        })
}

/// A time of day `HH:MM` (24-hour clock).
pub fn time_of_day(text: &str) -> Result<String, String> {
    let t = text.trim();
    let ok = t.len() == 5
        && t.as_bytes()[2] == b':'
        && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && t[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && t.bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit());
    if ok {
        Ok(t.to_owned())
    } else {
        Err(format!(
            "{:?} is not a time of day HH:MM (e.g. 22:00)",
            truncate(t)
        ))
    }
}

/// Checks `text` as an address of `channel` (in-app addresses are subscriber ids).
pub fn for_channel(channel: Channel, text: &str) -> Result<String, String> {
    match channel {
        Channel::Email => email(text),
        Channel::Webhook => webhook_url(text),
        Channel::Sms => phone(text),
        Channel::Push => push_token(text),
        Channel::InApp => subscriber_id(text),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" a@example.com ").as_deref(), Ok("a@example.com"));
        assert!(email("a@localhost").is_ok());
        for bad in [
            "",
            "a",
            "a@",
            "@b.c",
            "a b@c.d",
            "a@nodot",
            &format!("{}@e.com", "x".repeat(260)),
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            webhook_url("https://hooks.example.com/x?y=1").as_deref(),
            Ok("https://hooks.example.com/x?y=1")
        );
        assert!(webhook_url("http://127.0.0.1:9/h").is_ok());
        for bad in [
            "",
            "ftp://x.y/",
            "not a url",
            "https://u:p@x.y/",
            "mailto:a@b.c",
        ] {
            assert!(webhook_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(phone("+1 (415) 555-0123").as_deref(), Ok("+14155550123"));
        for bad in [
            "",
            "4155550123",
            "+12",
            "+0123456789",
            "+1415555012a",
            &format!("+{}", "1".repeat(16)),
        ] {
            assert!(phone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_ids() {
        assert!(subscriber_id("user-1@acme:eu+x.y").is_ok());
        assert!(subscriber_id("").is_err());
        assert!(subscriber_id("a/b").is_err());
        assert!(subscriber_id(&"a".repeat(129)).is_err());
        assert!(template_name("welcome.v2").is_ok());
        for bad in ["", "Welcome", "-x", "a b", &"a".repeat(65)] {
            assert!(template_name(bad).is_err(), "{bad:?}");
        }
        assert!(push_token("abc:DEF-123").is_ok());
        assert!(push_token("has space").is_err());
    }

    #[test]
    fn zones_and_times() {
        assert!(timezone("Europe/Paris").is_ok());
        assert!(timezone("UTC").is_ok());
        assert!(timezone("Mars/Olympus").is_err());
        assert_eq!(time_of_day("07:30").as_deref(), Ok("07:30"));
        for bad in ["7:30", "24:00", "12:60", "ab:cd", "12-30"] {
            assert!(time_of_day(bad).is_err(), "{bad:?}");
        }
    }
}
