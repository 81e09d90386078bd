//! Conversations: open or create, list mine, read one, manage members.

use axum::extract::State;
use axum::http::StatusCode;

use praxis_http::pagination::{cursor_param, encode_cursor};
use praxis_http::responses::{Conflict, Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};

use super::auth::{ChatRead, ChatWrite};
use super::dto::{
    AddMember, ChatCreateConversation, ConversationPage, ConversationSummary, ConversationView,
    CreateConversation, ListParams, RoleName,
};
use super::{AppState, TAG, check_account, page_limit};
use crate::workers::conversations::MemberChange;

/// Open a direct conversation or create a group.
///
/// `{"kind": "direct", "with": "<account>"}` opens the one direct conversation of the caller
/// and that account (200 when it exists already, 201 when this call opened it).
/// `{"kind": "group", "title": "...", "members": [...]}` creates a group owned by the caller
/// (201). `"encrypted": true` makes either end-to-end encrypted, for good: its messages are
/// ciphertext envelopes only.
#[utoipa::path(
    post,
    path = "/api/v1/chat/conversations",
    tag = TAG,
    request_body = ChatCreateConversation,
    responses(
        (status = 201, description = "Opened or created", body = ConversationView),
        (status = 200, description = "The direct conversation existed", body = ConversationView),
        (status = 400, description = "Invalid body; `errors` names each field (kind, with, title, members[i])", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
        (status = 409, description = "The direct conversation exists with the other `encrypted` mode", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Json(req): Json<CreateConversation>,
) -> Result<(StatusCode, Json<ConversationView>), Problem> {
    let me = who.subject();
    let chat = &state.inner.chat;
    let (conversation, created) = match req {
        CreateConversation::Direct { with, encrypted } => {
            check_account("with", &with)?;
            chat.open_direct(me, &with, encrypted).await?
        }
        CreateConversation::Group {
            title,
            members,
            encrypted,
        } => {
            for (i, m) in members.iter().enumerate() {
                check_account(&format!("members[{i}]"), m)?;
            }
            (
                chat.create_group(me, &title, &members, encrypted).await?,
                true,
            )
        }
    };
    let (conversation, members) = chat.view(me, &conversation.id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ConversationView::new(&conversation, &members, me)),
    ))
}

/// List my conversations, newest activity first, with unread counts and the last message.
#[utoipa::path(
    get,
    path = "/api/v1/chat/conversations",
    tag = TAG,
    params(ListParams),
    responses(
        (status = 200, description = "A page of conversations", body = ConversationPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    Query(params): Query<ListParams>,
) -> Result<Json<ConversationPage>, Problem> {
    let me = who.subject();
    let limit = page_limit(params.limit, state.inner.chat.settings().page_max)?;
    let cursor: Option<(i64, String)> = cursor_param(params.cursor.as_deref())?;
    let mut listed = state.inner.chat.list(me, cursor, limit + 1).await?;
    let more = listed.len() > limit as usize;
    listed.truncate(limit as usize);
    let next_cursor = more
        .then(|| listed.last())
        .flatten()
        .map(|l| encode_cursor(&(l.conversation.last_at, l.conversation.id.clone())));
    Ok(Json(ConversationPage {
        conversations: listed
            .iter()
            .map(|l| ConversationSummary::new(l, me))
            .collect(),
        next_cursor,
    }))
}

/// Read one of my conversations with its members and their read markers.
#[utoipa::path(
    get,
    path = "/api/v1/chat/conversations/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The conversation")),
    responses(
        (status = 200, description = "The conversation", body = ConversationView),
        (status = 404, description = "No such conversation among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, Problem> {
    let me = who.subject();
    let (conversation, members) = state.inner.chat.view(me, &id).await?;
    Ok(Json(ConversationView::new(&conversation, &members, me)))
}

/// Add a member to a group, or set a member's role (owners only).
#[utoipa::path(
    post,
    path = "/api/v1/chat/conversations/{id}/members",
    tag = TAG,
    params(("id" = String, Path, description = "The group")),
    request_body = AddMember,
    responses(
        (status = 201, description = "The account joined", body = ConversationView),
        (status = 200, description = "The account was a member; its role is set", body = ConversationView),
        (status = 400, description = "Invalid account or role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden, Conflict,
    ),
    security(("bearer" = []))
)]
pub async fn add_member(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Path(id): Path<String>,
    Json(req): Json<AddMember>,
) -> Result<(StatusCode, Json<ConversationView>), Problem> {
    let me = who.subject();
    let chat = &state.inner.chat;
    check_account("account", &req.account)?;
    let role = req.role.unwrap_or(RoleName::Member).into();
    let change = chat.add_member(me, &id, &req.account, role).await?;
    let (conversation, members) = chat.view(me, &id).await?;
    let status = if change == MemberChange::Joined {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ConversationView::new(&conversation, &members, me)),
    ))
}

/// Leave a group, or remove a member (owners only). When the last owner leaves, the
/// longest-standing member becomes an owner.
#[utoipa::path(
    delete,
    path = "/api/v1/chat/conversations/{id}/members/{account}",
    tag = TAG,
    params(
        ("id" = String, Path, description = "The group"),
        ("account" = String, Path, description = "The member to remove (the caller to leave)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such conversation among the caller's, or not a member", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden, Conflict,
    ),
    security(("bearer" = []))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Path((id, account)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    state
        .inner
        .chat
        .remove_member(who.subject(), &id, &account)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
