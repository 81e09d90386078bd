//! Request and response bodies of the feed routes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::model::{Post, rfc3339};

/// Most characters of a post's text.
pub const TEXT_MAX: usize = 500;
/// Most media references on a post.
pub const MEDIA_MAX: usize = 4;
/// Longest media reference.
pub const MEDIA_REF_MAX: usize = 2048;
/// Posts per page by default.
pub const LIMIT_DEFAULT: u32 = 20;
/// Most posts per page.
pub const LIMIT_MAX: u32 = 40;

/// A new post.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePost {
    /// The text, 1 to 500 characters (not only spaces).
    #[schema(min_length = 1, max_length = 500, pattern = r"[^\s\u0085]")]
    pub text: String,
    /// Media references (URLs or ids of uploaded files), at most 4, each 1 to 2048 characters
    /// without control characters.
    #[serde(default)]
    #[schema(value_type = Option<Vec<MediaRef>>, max_items = 4)]
    pub media: Option<Vec<String>>,
    /// The id of the post this one replies to (a post that exists; 404 otherwise).
    #[serde(default)]
    #[schema(pattern = "^[1-9][0-9]{0,18}$")]
    pub reply_to: Option<String>,
}

/// A post's new text (an edit).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditPost {
    /// The text, 1 to 500 characters (not only spaces).
    #[schema(min_length = 1, max_length = 500, pattern = r"[^\s\u0085]")]
    pub text: String,
}

/// A post.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PostView {
    /// Post id (a decimal string, as Mastodon's); time order is id order.
    pub id: String,
    /// The author's user id.
    pub author: String,
    /// The text.
    pub text: String,
    /// Media references.
    pub media: Vec<String>,
    /// The post this one replies to.
    pub reply_to: Option<String>,
    /// Creation time (RFC 3339, UTC).
    pub created_at: String,
    /// `push` (fanned out on write) or `pull` (merged on read), decided at creation.
    pub fanout: String,
}

impl From<&Post> for PostView {
    fn from(p: &Post) -> Self {
        let media = p
            .media
            .as_ref()
            .and_then(|m| m.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: p.id.to_string(),
            author: p.author.clone(),
            text: p.text.clone(),
            media,
            reply_to: p.reply_to.map(|r| r.to_string()),
            created_at: rfc3339(p.created_at),
            fanout: p.fanout.as_str().to_owned(),
        }
    }
}

/// The caller's relation to a user after a change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Relationship {
    /// The other user.
    pub user: String,
    /// Which relation (`follow`, `block`, `mute`).
    pub relation: String,
    /// Whether it holds now.
    pub active: bool,
    /// Whether this call changed it.
    pub changed: bool,
}

/// Follows to import.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportFollows {
    /// `[follower, followee]` pairs of user ids, 1 to 10,000 (the `import_max` setting); a
    /// pair of one user with itself is skipped.
    #[schema(schema_with = follows_schema)]
    pub follows: Vec<(String, String)>,
}

/// The outcome of an import.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    /// Pairs in the request.
    pub requested: usize,
    /// Pairs that were new.
    pub imported: u64,
}

/// Paging of timelines, Mastodon style.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Posts older than this id.
    #[param(minimum = 0)]
    pub max_id: Option<i64>,
    /// Posts newer than this id (the newest ones first).
    #[param(minimum = 0)]
    pub since_id: Option<i64>,
    /// Posts newer than this id: the page right after it (still listed newest first).
    #[param(minimum = 0)]
    pub min_id: Option<i64>,
    /// Posts per page, 1 to 40 (default 20); outside that range is 400.
    #[param(minimum = 1, maximum = 40)]
    pub limit: Option<u32>,
}

/// A user id as the feed accepts it: 1 to 128 visible ASCII characters without `/`
/// ([`crate::domain::model::valid_user_id`]).
pub const USER_ID_PATTERN: &str = "^[!-.0-~]{1,128}$";

fn user_id_schema() -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(USER_ID_PATTERN))
}

fn follows_schema() -> utoipa::openapi::Array {
    let pair = utoipa::openapi::ArrayBuilder::new()
        .items(user_id_schema())
        .min_items(Some(2))
        .max_items(Some(2));
    utoipa::openapi::ArrayBuilder::new()
        .items(pair)
        .min_items(Some(1))
        .max_items(Some(10_000))
        .build()
}

/// A media reference (OpenAPI only): 1 to 2048 characters without control characters.
#[derive(ToSchema)]
#[schema(
    min_length = 1,
    max_length = 2048,
    pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
)]
#[expect(
    dead_code,
    reason = "describes the items of CreatePost::media in the OpenAPI document"
)]
pub struct MediaRef(String);
