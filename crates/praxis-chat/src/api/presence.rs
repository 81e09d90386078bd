//! Presence of one's contacts.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Problem, Query, Require};

use super::auth::ChatRead;
use super::dto::rfc3339;
use super::{AppState, TAG};

/// Query of `GET /api/v1/chat/presence`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PresenceParams {
    /// Account ids (1 to 128 visible ASCII characters each), comma-separated (spaces around
    /// the commas are allowed), 1 to 100.
    #[param(pattern = "^ *[!-+\\--~]{1,128}( *, *[!-+\\--~]{1,128}){0,99} *$")]
    pub accounts: String,
}

/// One account's presence.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PresenceView {
    /// The account.
    pub account: String,
    /// `online`, `away` or `offline`.
    pub status: String,
    /// Its last heartbeat (RFC 3339), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// The answer of `GET /api/v1/chat/presence`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PresenceList {
    /// In the order asked, leaving out accounts that share no conversation with the caller.
    pub presence: Vec<PresenceView>,
}

/// Presence of my contacts.
///
/// Online or away while one of the account's live connections beats (within `presence_ttl`),
/// offline otherwise, with the last time it was seen. Accounts that share no conversation
/// with the caller are left out.
#[utoipa::path(
    get,
    path = "/api/v1/chat/presence",
    tag = TAG,
    params(PresenceParams),
    responses(
        (status = 200, description = "Their presence", body = PresenceList),
        (status = 400, description = "No accounts, or more than 100", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn presence(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    Query(params): Query<PresenceParams>,
) -> Result<Json<PresenceList>, Problem> {
    let accounts = parse_accounts(&params.accounts)?;
    let found = state.inner.chat.presence(who.subject(), &accounts).await?;
    Ok(Json(PresenceList {
        presence: found
            .into_iter()
            .map(|p| PresenceView {
                account: p.account,
                status: p.status.as_str().to_owned(),
                last_seen: p.last_seen.map(rfc3339),
            })
            .collect(),
    }))
}

/// Reads `a,b,...`: 1 to 100 account ids of 1 to 128 visible ASCII characters, spaces allowed
/// around the commas; anything else is a 400 naming `accounts` (what the OpenAPI pattern says).
fn parse_accounts(text: &str) -> Result<Vec<String>, Problem> {
    let bad = || {
        Problem::invalid(
            "accounts",
            "give 1 to 100 account ids (1 to 128 visible ASCII characters each), comma-separated",
        )
    };
    let mut accounts = Vec::new();
    for item in text.split(',') {
        let id = item.trim_matches(' ');
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        accounts.push(id.to_owned());
    }
    if accounts.len() > 100 {
        return Err(bad());
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::parse_accounts;

    #[test]
    fn accounts_are_read_as_the_pattern_says() {
        assert_eq!(
            parse_accounts("a, b ,c").expect("three"),
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
        );
        for bad in [
            "",
            " ",
            "a,,b",
            "a,",
            "é",
            "a\tb",
            &vec!["x"; 101].join(","),
        ] {
            assert!(parse_accounts(bad).is_err(), "{bad:?}");
        }
        assert!(parse_accounts(&vec!["x"; 100].join(",")).is_ok());
    }
}
