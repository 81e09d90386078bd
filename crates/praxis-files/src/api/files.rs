//! Simple uploads, metadata, downloads, signed URLs, public links, usage and quotas.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Multipart, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use praxis_http::access::Admin;
use praxis_http::pagination::{cursor_param, encode_cursor, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};
use serde::Deserialize;

use super::auth::{FilesRead, FilesWrite};
use super::dto::{
    FileLinkRequest, FileLinkView, FilePage, FileQuotaRequest, FileSignRequest, FileSignedUrl,
    FileView, ListParams, SignMethod, SimpleUploadParams, UploadForm, rfc3339,
};
use super::{AppState, TAG, download};
use crate::domain::describe::{self, DEFAULT_TYPE, is_media_type};
use crate::domain::model::FileUsage;
use crate::domain::signed::Grant;
use crate::store::Quota;
use crate::workers::files::Access;
use crate::workers::uploads::{Append, NewUpload};

/// Largest multipart form upload (the whole request); larger files go through the simple
/// upload or tus, which stream.
pub const FORM_MAX_BYTES: usize = 8 << 20;

/// Longest validity of a public link, in seconds (100 years; the document's maximum).
const MAX_LINK_TTL_S: u64 = 3_153_600_000;

/// The path of the simple upload.
pub const SIMPLE_UPLOAD: &str = "/api/v1/files/upload";

fn problem_of(field: &str, message: String) -> Problem {
    Problem::invalid(field.to_owned(), message)
}

/// Stores a whole body as a file (the simple upload and the form upload share it).
async fn store_whole(
    state: &AppState,
    owner: &str,
    metadata: String,
    length: Option<u64>,
    body: praxis_infra::blobs::ByteStream,
) -> Result<FileView, Problem> {
    describe::check(&metadata).map_err(|(_, m)| problem_of("name", m))?;
    let upload = state
        .files
        .create(NewUpload {
            owner: owner.to_owned(),
            length: Some(length.unwrap_or(0)).filter(|_| length.is_some()),
            metadata,
            concat: None,
        })
        .await?;
    let id = upload.id.clone();
    if !upload.is_full() {
        let appended = state
            .files
            .append(
                Append {
                    owner: owner.to_owned(),
                    id: id.clone(),
                    offset: 0,
                    checksum: None,
                    length: None,
                    ends_upload: true,
                },
                body,
            )
            .await;
        if let Err(e) = appended {
            // A simple upload is all or nothing.
            let _ = state.files.terminate(owner, &id).await;
            return Err(e.into());
        }
    }
    let file = state.files.file_of(owner, &id).await?;
    Ok(FileView::from(&file))
}

/// Upload a whole file in one request.
///
/// The body is the file; `Content-Type` its declared type (checked against its first bytes);
/// `Content-Length` is optional (without it the file ends where the body ends). The body
/// streams to storage: any size up to max_size and the caller's quota.
#[utoipa::path(
    put,
    path = "/api/v1/files/upload",
    tag = TAG,
    params(SimpleUploadParams),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream", description = "The file's bytes (none: an empty file)"),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, description = "Bad name, tags, ttl or Content-Type", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over max_size or the caller's quota", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn put_upload(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    Query(q): Query<SimpleUploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileView>), Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_TYPE);
    if !is_media_type(content_type) {
        return Err(Problem::invalid(
            "Content-Type",
            "must be a media type like image/png",
        ));
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let tags: Vec<String> = q
        .tags
        .as_deref()
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if q.ttl.as_deref() == Some("") {
        return Err(Problem::invalid(
            "ttl",
            "must be a duration like 3600s or 7d",
        ));
    }
    if let Some(ttl) = &q.ttl {
        praxis_kit::text::parse_duration(ttl)
            .map_err(|e| Problem::invalid("ttl", format!("{e} (e.g. 3600s, 7d)")))?;
    }
    if q.name.is_empty() {
        return Err(Problem::invalid("name", "must not be empty"));
    }
    let metadata = describe::encode(&q.name, content_type, &tags, q.ttl.as_deref());
    let body = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    let view = store_whole(&state, who.subject(), metadata, length, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Upload a small file as a `multipart/form-data` form (field `file`; optional fields `tags`
/// and `ttl`, in any order). The whole request is at most 8 MiB (413 above): use the simple
/// upload or tus for large files.
#[utoipa::path(
    post,
    path = "/api/v1/files/upload",
    tag = TAG,
    request_body(content = UploadForm, content_type = "multipart/form-data", description = "Field `file` (with a filename and a Content-Type), optional `tags` and `ttl`"),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, description = "No `file` field, or a bad field", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 8 MiB, max_size or the caller's quota", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn form_upload(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    mut req: axum::extract::Request,
) -> Result<(StatusCode, Json<FileView>), Problem> {
    // The path is a streaming route (for the PUT), so the stack set no body limit: the form,
    // read whole, gets its own.
    axum::extract::DefaultBodyLimit::max(FORM_MAX_BYTES).apply(&mut req);
    let form = <Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await;
    let mut form = form.map_err(|e| {
        Problem::new(
            e.status(),
            "malformed-form",
            "Malformed form",
            e.body_text(),
        )
    })?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        Problem::new(
            e.status(),
            "malformed-form",
            "Malformed form",
            e.body_text(),
        )
    };
    let mut tags: Vec<String> = Vec::new();
    let mut ttl: Option<String> = None;
    // The form is bounded by body_limit (small files), so its file is read whole: its fields
    // may come in any order.
    let mut file: Option<(String, String, bytes::Bytes)> = None;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "tags" => {
                let t = field.text().await.map_err(bad)?;
                tags = t
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            "ttl" => {
                let t = field.text().await.map_err(bad)?;
                if t.is_empty() {
                    return Err(Problem::invalid(
                        "ttl",
                        "must be a duration like 3600s or 7d",
                    ));
                }
                praxis_kit::text::parse_duration(&t)
                    .map_err(|e| Problem::invalid("ttl", format!("{e} (e.g. 3600s, 7d)")))?;
                ttl = Some(t);
            }
            "file" if file.is_none() => {
                let name = field.file_name().unwrap_or("file").to_owned();
                let content_type = field
                    .content_type()
                    .filter(|t| is_media_type(t))
                    .unwrap_or(DEFAULT_TYPE)
                    .to_owned();
                let bytes = field.bytes().await.map_err(bad)?;
                file = Some((name, content_type, bytes));
            }
            "file" => return Err(Problem::invalid("file", "send one `file` field")),
            other => {
                return Err(Problem::invalid(
                    other.to_owned(),
                    "unknown form field; send `file`, and optionally `tags` and `ttl`",
                ));
            }
        }
    }
    let Some((name, content_type, bytes)) = file else {
        return Err(Problem::invalid("file", "the form has no `file` field"));
    };
    let metadata = describe::encode(&name, &content_type, &tags, ttl.as_deref());
    let length = bytes.len() as u64;
    let body = futures::stream::once(async move { Ok(bytes) }).boxed();
    let view = store_whole(&state, who.subject(), metadata, Some(length), body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// List my files, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/files",
    tag = TAG,
    params(ListParams),
    responses(
        (status = 200, description = "A page of files", body = FilePage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    who: Require<FilesRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<FilePage>, Problem> {
    let limit = page_limit(q.limit, 50, state.files.settings().page_max)?;
    // The cursor is the last file's `[created_ms, id]`.
    let after: Option<(i64, String)> = cursor_param(q.cursor.as_deref())?;
    let mut files = state.files.list(who.subject(), after, limit + 1).await?;
    let more = files.len() > limit as usize;
    files.truncate(limit as usize);
    let next_cursor = more
        .then(|| files.last())
        .flatten()
        .map(|f| encode_cursor(&(f.created_at, f.id.clone())));
    Ok(Json(FilePage {
        items: files.iter().map(FileView::from).collect(),
        next_cursor,
    }))
}

/// A file's metadata.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The file")),
    responses(
        (status = 200, description = "The file", body = FileView),
        (status = 404, description = "No such file among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    who: Require<FilesRead>,
    Path(id): Path<String>,
) -> Result<Json<FileView>, Problem> {
    let file = state.files.file_of(who.subject(), &id).await?;
    Ok(Json(FileView::from(&file)))
}

/// Delete a file. Its content is freed when no other file has the same content.
#[utoipa::path(
    delete,
    path = "/api/v1/files/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The file")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such file among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.files.delete_file(who.subject(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of a signed download URL.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignedParams {
    /// Unix seconds after which the URL is refused.
    pub expires: Option<i64>,
    /// The method the URL is bound to.
    pub method: Option<String>,
    /// The address the URL is bound to.
    pub ip: Option<String>,
    /// The signature.
    pub sig: Option<String>,
}

/// Download a file's bytes: as its owner (a bearer token), or with a signed URL's query.
///
/// Single and multiple `Range`s (206, `multipart/byteranges` for several), `If-Range`,
/// `If-None-Match` (304), `ETag` (the content's BLAKE3), `Content-Disposition` with the
/// file's name. A file whose content does not match its declared type is served as
/// `application/octet-stream`, as an attachment.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}/content",
    tag = TAG,
    params(("id" = String, Path, description = "The file"), SignedParams),
    responses(
        (status = 200, description = "The bytes"),
        (status = 206, description = "The ranges asked for"),
        (status = 304, description = "If-None-Match matched"),
        (status = 400, description = "A query parameter of the wrong type", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A signed URL that expired, was altered or is incomplete, or is used with another method or address; a quarantined file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The file is waiting for its scan", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "No range overlaps the file", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security((), ("bearer" = []))
)]
pub async fn content(
    State(state): State<AppState>,
    caller: praxis_http::Caller,
    Path(id): Path<String>,
    Query(q): Query<SignedParams>,
    method: Method,
    headers: HeaderMap,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
) -> Result<Response, Problem> {
    let (file, cache) = if let Some(sig) = q.sig.as_deref() {
        // A malformed signed query is a URL this server did not sign: 403, as a bad
        // signature is.
        let not_signed = || {
            Problem::forbidden(
                "the URL's signature does not match; ask the file's owner for a new link",
            )
        };
        let expires = q.expires.ok_or_else(not_signed)?;
        let ip = match q.ip.as_deref() {
            Some(text) => Some(text.parse::<IpAddr>().map_err(|_| not_signed())?),
            None => None,
        };
        let client = praxis_http::client_ip::client_ip(
            peer.map(|axum::Extension(ConnectInfo(a))| a.ip()),
            &headers,
            &state.trusted_proxies,
        );
        let grant = Grant {
            file_id: id.clone(),
            expires,
            method: q.method.clone(),
            ip,
        };
        let access = Access::Signed {
            grant,
            sig,
            method: method.as_str(),
            client,
        };
        (
            state.files.authorise(Some(&id), access).await?,
            "private, no-cache",
        )
    } else {
        let principal = caller.require_principal()?;
        if !<FilesRead as praxis_http::Scope>::granted(principal) {
            return Err(<FilesRead as praxis_http::Scope>::refused());
        }
        let owner = caller.owner_id().to_owned();
        (
            state
                .files
                .authorise(Some(&id), Access::Owner(&owner))
                .await?,
            "private, no-cache",
        )
    };
    download::respond(&state.files, &file, &method, &headers, cache).await
}

/// Make a signed URL that downloads the file without a token until it expires.
#[utoipa::path(
    post,
    path = "/api/v1/files/{id}/signed-url",
    tag = TAG,
    params(("id" = String, Path, description = "The file")),
    request_body = FileSignRequest,
    responses(
        (status = 200, description = "The URL", body = FileSignedUrl),
        (status = 400, description = "Bad expires_in, method or ip", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn sign(
    State(state): State<AppState>,
    who: Require<FilesRead>,
    Path(id): Path<String>,
    Json(req): Json<FileSignRequest>,
) -> Result<Json<FileSignedUrl>, Problem> {
    let method = req.method.map(|m| match m {
        SignMethod::Get => "GET".to_owned(),
        SignMethod::Head => "HEAD".to_owned(),
    });
    let ip = match req.ip.as_deref() {
        Some(text) => Some(
            text.parse::<IpAddr>()
                .map_err(|_| Problem::invalid("ip", "must be an IP address"))?,
        ),
        None => None,
    };
    let (query, expires) = state
        .files
        .sign(who.subject(), &id, req.expires_in, method, ip)
        .await?;
    Ok(Json(FileSignedUrl {
        url: format!("/api/v1/files/{id}/content?{query}"),
        expires_at: rfc3339(expires * 1000),
    }))
}

/// Make a public link: anyone with it may download the file, until it expires or is revoked.
#[utoipa::path(
    post,
    path = "/api/v1/files/{id}/links",
    tag = TAG,
    params(("id" = String, Path, description = "The file")),
    request_body = FileLinkRequest,
    responses(
        (status = 201, description = "The link", body = FileLinkView),
        (status = 400, description = "Bad expires_in, or an unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn create_link(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    Path(id): Path<String>,
    Json(req): Json<FileLinkRequest>,
) -> Result<(StatusCode, Json<FileLinkView>), Problem> {
    let expires_at = match req.expires_in {
        None => None,
        Some(s) if s == 0 || s > MAX_LINK_TTL_S => {
            return Err(Problem::invalid(
                "expires_in",
                format!("must be from 1 to {MAX_LINK_TTL_S} seconds (100 years)"),
            ));
        }
        Some(s) => Some(
            praxis_infra::sql::now_ms()
                .saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
        ),
    };
    let link = state
        .files
        .create_link(who.subject(), &id, expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(FileLinkView {
            url: format!("/api/v1/files/public/{}", link.token),
            token: link.token,
            file_id: link.file_id,
            expires_at: link.expires_at.map(rfc3339),
        }),
    ))
}

/// Revoke a public link; it answers 410 from then on.
#[utoipa::path(
    delete,
    path = "/api/v1/files/links/{token}",
    tag = TAG,
    params(("token" = String, Path, description = "The link's token")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such link among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_link(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    Path(token): Path<String>,
) -> Result<StatusCode, Problem> {
    state.files.revoke_link(who.subject(), &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Download through a public link (no token).
#[utoipa::path(
    get,
    path = "/api/v1/files/public/{token}",
    tag = TAG,
    params(("token" = String, Path, description = "The link's token")),
    responses(
        (status = 200, description = "The bytes"),
        (status = 206, description = "The ranges asked for"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The link was revoked or expired", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn public(
    State(state): State<AppState>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let file = state.files.authorise(None, Access::Link(&token)).await?;
    let mut res =
        download::respond(&state.files, &file, &method, &headers, "public, max-age=60").await?;
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

/// What I hold and may hold.
#[utoipa::path(
    get,
    path = "/api/v1/files/usage",
    tag = TAG,
    responses((status = 200, description = "FileUsage and quota", body = FileUsage), Unauthorized, Forbidden),
    security(("bearer" = []))
)]
pub async fn usage(
    State(state): State<AppState>,
    who: Require<FilesRead>,
) -> Result<Json<FileUsage>, Problem> {
    Ok(Json(state.files.usage(who.subject()).await?))
}

/// Set an account's quota (admin).
#[utoipa::path(
    put,
    path = "/api/v1/files/quotas/{account}",
    tag = TAG,
    params(("account" = String, Path, description = "The account")),
    request_body = FileQuotaRequest,
    responses(
        (status = 200, description = "The account's usage under its new quota", body = FileUsage),
        (status = 400, description = "Bad max_bytes or max_files", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn set_quota(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(account): Path<String>,
    Json(req): Json<FileQuotaRequest>,
) -> Result<Json<FileUsage>, Problem> {
    if req.max_files == 0 {
        return Err(Problem::invalid("max_files", "must be at least 1"));
    }
    if i64::try_from(req.max_bytes).is_err() || i64::try_from(req.max_files).is_err() {
        return Err(Problem::invalid("max_bytes", "must be below 2^63"));
    }
    let usage = state
        .files
        .set_quota(
            &account,
            Quota {
                max_bytes: req.max_bytes,
                max_files: req.max_files,
            },
        )
        .await?;
    Ok(Json(usage))
}
