//! The one REST call the WebSocket scenarios make: creating the group they fan out to
//! (`POST /api/v1/chat/conversations`, `{"kind": "group", "title", "members"}`), as its owner.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::Full;
use serde::Deserialize;

use crate::client;
use crate::ws::dial::Server;
use crate::ws::token::Signer;

/// The route that creates conversations.
pub const CONVERSATIONS_PATH: &str = "/api/v1/chat/conversations";

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// Creates a group owned by `owner` with `members` (the owner excluded) and returns its id.
pub async fn create_group(
    server: &Server,
    signer: Option<&Signer>,
    owner: &str,
    members: &[String],
) -> Result<String, String> {
    let body = serde_json::json!({
        "kind": "group",
        "title": "praxis bench ws fanout",
        "members": members,
    })
    .to_string();
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(CONVERSATIONS_PATH)
        .header(HOST, &server.authority)
        .header(CONTENT_TYPE, "application/json");
    if let Some(signer) = signer {
        let token = signer.token(owner).map_err(|e| e.to_string())?;
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("building the request: {e}"))?;
    let mut sender = client::connect(server.addr)
        .await
        .map_err(|e| format!("{}: {e}", server.url))?;
    let (status, body) = client::exchange_collect(&mut sender, request)
        .await
        .map_err(|e| format!("POST {CONVERSATIONS_PATH}: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    match status {
        200 | 201 => serde_json::from_slice::<Created>(&body)
            .map(|c| c.id)
            .map_err(|e| {
                format!("POST {CONVERSATIONS_PATH} answered {status} without an id ({e}): {text}")
            }),
        400 if text.contains("max_members") => Err(format!(
            "the group is larger than the server allows: raise its [chat] max_members (PRAXIS_CHAT_MAX_MEMBERS) to at least {}: {text}",
            members.len() + 1
        )),
        401 => Err(format!(
            "POST {CONVERSATIONS_PATH}: 401: set PRAXIS_JWT_SECRET (or --jwt-secret-file) to the server's jwt secret: {text}"
        )),
        _ => Err(format!(
            "POST {CONVERSATIONS_PATH} answered {status}: {text}"
        )),
    }
}
