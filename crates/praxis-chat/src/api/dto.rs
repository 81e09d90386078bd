//! Request and response bodies of the chat API (serde + OpenAPI schemas). Schema names carry
//! a `Chat` prefix where a bare name could clash with another system's in the merged document.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::keys::{Content, Encrypted};
use crate::domain::model::{Conversation, Kind, Listed, Member, Message, Role};
use crate::domain::rules::peer_of;
use crate::error::ChatError;

/// Body of `POST /api/v1/chat/conversations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CreateConversation {
    /// The direct conversation with one other account (opened once per pair).
    Direct {
        /// The other account.
        #[schema(pattern = "^[!-~]{1,128}$")]
        with: String,
        /// End-to-end encrypted: messages are ciphertext envelopes only (fixed at creation).
        #[serde(default)]
        encrypted: bool,
    },
    /// A new group, owned by the caller.
    Group {
        /// 1 to 200 characters, not only spaces, no control characters.
        #[schema(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
        )]
        title: String,
        /// The other members (the caller joins as owner); at most `max_members` in all.
        #[serde(default)]
        #[schema(value_type = Vec<ChatAccountId>, max_items = 999)]
        members: Vec<String>,
        /// End-to-end encrypted: messages are ciphertext envelopes only (fixed at creation).
        #[serde(default)]
        encrypted: bool,
    },
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChatRole)]
pub enum RoleName {
    /// Manages members and may delete any message.
    Owner,
    /// Sends, and edits or deletes their own messages.
    Member,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Owner => Role::Owner,
            RoleName::Member => Role::Member,
        }
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => RoleName::Owner,
            Role::Member => RoleName::Member,
        }
    }
}

/// Body of `POST /api/v1/chat/conversations/{id}/members`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The account to add (or whose role to set).
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub account: String,
    /// Its role; `member` when absent.
    #[serde(default)]
    pub role: Option<RoleName>,
}

/// One member of a conversation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ChatMember)]
pub struct MemberView {
    /// The account.
    pub account: String,
    /// Its role.
    pub role: RoleName,
    /// When it joined (RFC 3339).
    pub joined_at: String,
    /// The highest sequence it has read.
    pub read_seq: i64,
    /// The highest sequence delivered to one of its devices (at least `read_seq`).
    pub delivered_seq: i64,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            account: m.account.clone(),
            role: m.role.into(),
            joined_at: rfc3339(m.joined_at),
            read_seq: m.read_seq,
            delivered_seq: m.delivered_seq,
        }
    }
}

/// A conversation with its members.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationView {
    /// Its id.
    pub id: String,
    /// `direct` or `group`.
    #[schema(example = "group")]
    pub kind: String,
    /// The group's title (absent for direct conversations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The other account of a direct conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// Sequence number of its newest message (0: none yet).
    pub last_seq: i64,
    /// Its newest activity (RFC 3339).
    pub updated_at: String,
    /// End-to-end encrypted: its messages carry `encrypted`, never `body`.
    pub encrypted: bool,
    /// Its members, in joining order.
    pub members: Vec<MemberView>,
}

impl ConversationView {
    /// The view of `c` for `me`.
    pub fn new(c: &Conversation, members: &[Member], me: &str) -> Self {
        Self {
            id: c.id.clone(),
            kind: c.kind.as_str().to_owned(),
            title: c.title.clone(),
            peer: peer(c, me),
            created_by: c.created_by.clone(),
            created_at: rfc3339(c.created_at),
            last_seq: c.last_seq,
            updated_at: rfc3339(c.last_at),
            encrypted: c.encrypted,
            members: members.iter().map(MemberView::from).collect(),
        }
    }
}

/// A conversation in the caller's list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationSummary {
    /// Its id.
    pub id: String,
    /// `direct` or `group`.
    pub kind: String,
    /// The group's title (absent for direct conversations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The other account of a direct conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Sequence number of its newest message.
    pub last_seq: i64,
    /// The caller's read marker.
    pub read_seq: i64,
    /// Messages after the caller's read marker.
    pub unread: i64,
    /// Its newest activity (RFC 3339).
    pub updated_at: String,
    /// End-to-end encrypted: its messages carry `encrypted`, never `body`.
    pub encrypted: bool,
    /// Its newest message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message: Option<MessageView>,
}

impl ConversationSummary {
    /// The summary of `l` for `me`.
    pub fn new(l: &Listed, me: &str) -> Self {
        let c = &l.conversation;
        Self {
            id: c.id.clone(),
            kind: c.kind.as_str().to_owned(),
            title: c.title.clone(),
            peer: peer(c, me),
            last_seq: c.last_seq,
            read_seq: l.read_seq,
            unread: l.unread(),
            updated_at: rfc3339(c.last_at),
            encrypted: c.encrypted,
            last_message: l.last_message.as_ref().map(MessageView::from),
        }
    }
}

/// A page of the caller's conversations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationPage {
    /// Newest activity first.
    pub conversations: Vec<ConversationSummary>,
    /// Cursor of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /api/v1/chat/conversations`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to `page_max` (default 50; `page_max` is 200 unless configured).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Body of `POST /api/v1/chat/conversations/{id}/messages`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The sender's id for this message, 1 to 64 of `[A-Za-z0-9._:-]` (a UUID works). A
    /// resend with the same id answers the first copy.
    #[schema(
        example = "0190f2a4-7c1e-7000-8000-000000000001",
        pattern = "^[A-Za-z0-9._:-]{1,64}$"
    )]
    pub client_id: String,
    /// The text, at most `max_message_bytes` bytes, not blank (conversations that are not
    /// encrypted).
    #[serde(default)]
    #[schema(pattern = r"[^\s\u0085]")]
    pub body: Option<String>,
    /// The ciphertext envelope (end-to-end encrypted conversations), at most
    /// `max_message_bytes` bytes of JSON.
    #[serde(default)]
    pub encrypted: Option<EncryptedBody>,
}

/// Body of `PATCH /api/v1/chat/conversations/{id}/messages/{seq}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    /// The new text (conversations that are not encrypted), not blank.
    #[serde(default)]
    #[schema(pattern = r"[^\s\u0085]")]
    pub body: Option<String>,
    /// The new ciphertext envelope (encrypted conversations).
    #[serde(default)]
    pub encrypted: Option<EncryptedBody>,
}

/// An end-to-end encrypted message as the server stores and relays it, unread. Its shape is
/// checked (sizes, a registered `sender_device`); its contents never are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChatEncrypted)]
pub struct EncryptedBody {
    /// The clients' algorithm, 1 to 128 printable ASCII characters (e.g.
    /// `m.olm.v1.curve25519-aes-sha2`, `m.megolm.v1.aes-sha2`).
    #[schema(example = "m.megolm.v1.aes-sha2", pattern = "^[!-~]{1,128}$")]
    pub algorithm: String,
    /// The sender's device, registered with `PUT /api/v1/chat/devices/{device_id}/keys`.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    pub sender_device: String,
    /// The group session of the ciphertext (Megolm), when the algorithm has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub session_id: Option<String>,
    /// One ciphertext (a non-empty string), or one per recipient device (an object of 1 to
    /// 1000 non-empty strings or objects, e.g. Olm's `{"type": 0, "body": "..."}`).
    #[schema(schema_with = ciphertext_schema)]
    pub ciphertext: serde_json::Value,
}

impl From<EncryptedBody> for Encrypted {
    fn from(e: EncryptedBody) -> Self {
        Self {
            algorithm: e.algorithm,
            sender_device: e.sender_device,
            session_id: e.session_id,
            ciphertext: e.ciphertext,
        }
    }
}

impl From<&Encrypted> for EncryptedBody {
    fn from(e: &Encrypted) -> Self {
        Self {
            algorithm: e.algorithm.clone(),
            sender_device: e.sender_device.clone(),
            session_id: e.session_id.clone(),
            ciphertext: e.ciphertext.clone(),
        }
    }
}

/// A message's content from a request: exactly one of `body` and `encrypted`.
pub fn content<'a>(
    body: Option<&'a str>,
    encrypted: Option<&'a Encrypted>,
) -> Result<Content<'a>, ChatError> {
    match (body, encrypted) {
        (Some(body), None) => Ok(Content::Text(body)),
        (None, Some(e)) => Ok(Content::Encrypted(e)),
        (Some(_), Some(_)) => Err(ChatError::field(
            "encrypted",
            "send either body (text) or encrypted (ciphertext), not both",
        )),
        (None, None) => Err(ChatError::field(
            "body",
            "is required (or encrypted, in an end-to-end encrypted conversation)",
        )),
    }
}

/// A message; a deleted one keeps its place with no body.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ChatMessage)]
pub struct MessageView {
    /// Its conversation.
    pub conversation_id: String,
    /// Its place: 1, 2, 3, ... with no gaps.
    pub seq: i64,
    /// Who sent it.
    pub sender: String,
    /// The sender's id for it.
    pub client_id: String,
    /// The text; absent once deleted, and in encrypted conversations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The ciphertext envelope of an encrypted conversation's message; absent once deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<EncryptedBody>,
    /// When the server stored it (RFC 3339).
    pub created_at: String,
    /// When it was last edited (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// Whether it was deleted (a tombstone).
    pub deleted: bool,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        Self {
            conversation_id: m.conversation_id.clone(),
            seq: m.seq,
            sender: m.sender.clone(),
            client_id: m.client_id.clone(),
            body: m.body.clone(),
            encrypted: m.encrypted.as_ref().map(EncryptedBody::from),
            created_at: rfc3339(m.created_at),
            edited_at: m.edited_at.map(rfc3339),
            deleted: m.deleted_at.is_some(),
        }
    }
}

/// Query of `GET /api/v1/chat/conversations/{id}/messages`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Messages after this sequence number, oldest first (catch-up); with `before`, those
    /// between the two.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Messages before this sequence number, the nearest ones (scroll back).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Page size, 1 to `page_max` (default 50; `page_max` is 200 unless configured).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A page of history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<MessageView>,
    /// Sequence number of the conversation's newest message when the page was read.
    pub last_seq: i64,
}

/// Body of `POST /api/v1/chat/conversations/{id}/read`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The highest sequence number read (capped at the newest message; a marker never moves
    /// back).
    #[schema(minimum = 0)]
    pub seq: i64,
}

/// The caller's read marker.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadMarker {
    /// The highest sequence number read.
    pub read_seq: i64,
}

fn peer(c: &Conversation, me: &str) -> Option<String> {
    match c.kind {
        Kind::Direct => c.direct_key.as_deref().and_then(|k| peer_of(k, me)),
        Kind::Group => None,
    }
}

/// A unix-millisecond time as RFC 3339 (UTC, milliseconds).
pub use praxis_kit::text::rfc3339_ms as rfc3339;

/// An account id (OpenAPI only): 1 to 128 visible ASCII characters.
#[derive(ToSchema)]
#[schema(pattern = "^[!-~]{1,128}$")]
#[expect(dead_code, reason = "describes account ids in the OpenAPI document")]
pub struct ChatAccountId(String);

/// `ciphertext`: a non-empty string, or an object of 1 to 1000 entries, each a non-empty
/// string or a non-empty object.
fn ciphertext_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, Schema, Type};
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder};
    let text = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
    };
    let entry = OneOfBuilder::new().item(text()).item(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .min_properties(Some(1)),
    );
    OneOfBuilder::new()
        .item(text())
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .min_properties(Some(1))
                .max_properties(Some(1000))
                .additional_properties(Some(AdditionalProperties::RefOr(
                    Schema::OneOf(entry.build()).into(),
                ))),
        )
        .build()
        .into()
}

/// Body of `POST /api/v1/chat/conversations/{id}/messages` as the OpenAPI document states it:
/// text (`body`) or ciphertext (`encrypted`), one of them.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChatSendBody {
    /// A text message (conversations that are not encrypted).
    Text(ChatSendText),
    /// A ciphertext envelope (end-to-end encrypted conversations).
    Encrypted(ChatSendEncrypted),
}

/// A text message to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the send body in the OpenAPI document")]
pub struct ChatSendText {
    /// The sender's id for this message, 1 to 64 of `[A-Za-z0-9._:-]` (a UUID works).
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    client_id: String,
    /// The text, at most `max_message_bytes` bytes, not blank.
    #[schema(pattern = r"[^\s\u0085]")]
    body: String,
}

/// A ciphertext message to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the send body in the OpenAPI document")]
pub struct ChatSendEncrypted {
    /// The sender's id for this message, 1 to 64 of `[A-Za-z0-9._:-]` (a UUID works).
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    client_id: String,
    /// The envelope, at most `max_message_bytes` bytes of JSON.
    encrypted: EncryptedBody,
}

/// Body of `PATCH /api/v1/chat/conversations/{id}/messages/{seq}` as the OpenAPI document
/// states it: new text or a new envelope, one of them.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChatEditBody {
    /// New text.
    Text(ChatEditText),
    /// A new envelope.
    Encrypted(ChatEditEncrypted),
}

/// New text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the edit body in the OpenAPI document")]
pub struct ChatEditText {
    /// The new text, not blank.
    #[schema(pattern = r"[^\s\u0085]")]
    body: String,
}

/// A new envelope.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the edit body in the OpenAPI document")]
pub struct ChatEditEncrypted {
    /// The new envelope.
    encrypted: EncryptedBody,
}

/// Body of `POST /api/v1/chat/conversations` as the OpenAPI document states it (the `kind`
/// tag, and no other fields than the kind's).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChatCreateConversation {
    /// The direct conversation with one other account.
    Direct(ChatCreateDirect),
    /// A new group.
    Group(ChatCreateGroup),
}

/// `kind` of a direct conversation.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatDirectKind {
    /// A direct conversation.
    Direct,
}

/// `kind` of a group.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatGroupKind {
    /// A group.
    Group,
}

/// Opens the direct conversation with `with`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the create body in the OpenAPI document"
)]
pub struct ChatCreateDirect {
    /// `direct`.
    kind: ChatDirectKind,
    /// The other account (1 to 128 visible ASCII characters).
    #[schema(pattern = "^[!-~]{1,128}$")]
    with: String,
    /// End-to-end encrypted: messages are ciphertext envelopes only (fixed at creation).
    #[serde(default)]
    encrypted: bool,
}

/// Creates a group owned by the caller.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the create body in the OpenAPI document"
)]
pub struct ChatCreateGroup {
    /// `group`.
    kind: ChatGroupKind,
    /// 1 to 200 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    title: String,
    /// The other members (the caller joins as owner); at most `max_members` in all.
    #[serde(default)]
    #[schema(value_type = Vec<ChatAccountId>, max_items = 999)]
    members: Vec<String>,
    /// End-to-end encrypted: messages are ciphertext envelopes only (fixed at creation).
    #[serde(default)]
    encrypted: bool,
}
