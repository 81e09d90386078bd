//! tus 1.0.0 at `/api/v1/files/tus/`: the core protocol and the extensions creation,
//! creation-with-upload, creation-defer-length, expiration, checksum, termination and
//! concatenation. `GET` on a completed upload's URL downloads it.
//!
//! Every answer carries `Tus-Resumable: 1.0.0`; errors are problem+json with the statuses
//! the protocol names (409 offset mismatch, 410 expired, 412 unsupported version, 415 wrong
//! PATCH content type, 423 another PATCH running, 460 checksum mismatch).

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Path, Problem, Require};
use praxis_infra::blobs::ByteStream;

use super::auth::{FilesRead, FilesWrite};
use super::{AppState, TAG, download};
use crate::domain::describe;
use crate::domain::model::{Upload, UploadKind};
use crate::domain::tus::{self, Concat, HeaderError};
use crate::error::FilesError;
use crate::workers::uploads::{Append, NewUpload};

/// The protocol version a tus request states (`Tus-Resumable`), as the API document describes
/// it.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
pub enum TusVersion {
    /// tus 1.0.0.
    #[schema(rename = "1.0.0")]
    V1,
}

/// The path of the tus endpoint (creation and `OPTIONS`).
pub const ENDPOINT: &str = "/api/v1/files/tus/";
/// The path of an upload URL.
pub const UPLOAD: &str = "/api/v1/files/tus/{id}";

fn hv(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// Adds `Tus-Resumable` to any answer of the tus routes.
fn tus(result: Result<Response, Problem>) -> Response {
    let mut res = match result {
        Ok(res) => res,
        Err(p) => p.into_response(),
    };
    res.headers_mut()
        .insert(h("tus-resumable"), HeaderValue::from_static(tus::VERSION));
    res
}

fn header_problem(e: HeaderError) -> Problem {
    Problem::invalid(e.header, e.message)
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// 412 unless the request speaks tus 1.0.0 (400 when it names no version at all).
fn check_version(headers: &HeaderMap) -> Result<(), Problem> {
    match text(headers, "tus-resumable") {
        Some(tus::VERSION) => Ok(()),
        None => Err(Problem::invalid(
            "Tus-Resumable",
            "is required on every tus request but OPTIONS: send Tus-Resumable: 1.0.0",
        )),
        other => Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "tus-version",
            "Unsupported tus version",
            format!(
                "Tus-Resumable must be {} (got {:?}); this server speaks tus 1.0.0 only",
                tus::VERSION,
                other.unwrap_or("nothing")
            ),
        )),
    }
}

fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed()
}

fn upload_url(id: &str) -> String {
    format!("{ENDPOINT}{id}")
}

/// The headers describing an upload (HEAD, and the answers of POST and PATCH).
fn describe_upload(res: &mut Response, upload: &Upload, full: bool) {
    let hs = res.headers_mut();
    hs.insert(h("upload-offset"), hv(&upload.offset.to_string()));
    match upload.length {
        Some(len) => hs.insert(h("upload-length"), hv(&len.to_string())),
        None => hs.insert(h("upload-defer-length"), HeaderValue::from_static("1")),
    };
    if upload.completed_at.is_none() {
        hs.insert(h("upload-expires"), hv(&tus::http_date(upload.expires_at)));
    }
    if full {
        if !upload.metadata.is_empty() {
            hs.insert(h("upload-metadata"), hv(&upload.metadata));
        }
        match upload.kind {
            UploadKind::Single => {}
            UploadKind::Partial => {
                hs.insert(h("upload-concat"), HeaderValue::from_static("partial"));
            }
            UploadKind::Final => {
                let urls: Vec<String> = upload.parts.iter().map(|p| upload_url(p)).collect();
                hs.insert(h("upload-concat"), hv(&format!("final;{}", urls.join(" "))));
            }
        }
    }
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// What the server supports (tus discovery).
#[utoipa::path(
    options,
    path = "/api/v1/files/tus/",
    tag = TAG,
    responses((status = 204, description = "Tus-Version, Tus-Extension, Tus-Max-Size and Tus-Checksum-Algorithm")),
)]
pub async fn options(State(state): State<AppState>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let hs = res.headers_mut();
    hs.insert(h("tus-version"), HeaderValue::from_static(tus::VERSION));
    hs.insert(
        h("tus-extension"),
        HeaderValue::from_static(tus::EXTENSIONS),
    );
    hs.insert(
        h("tus-checksum-algorithm"),
        HeaderValue::from_static(tus::CHECKSUM_ALGORITHMS),
    );
    hs.insert(
        h("tus-max-size"),
        hv(&state.files.settings().max_size.to_string()),
    );
    tus(Ok(res))
}

/// Create an upload (tus creation).
///
/// Send `Upload-Length` (or `Upload-Defer-Length: 1`), optionally `Upload-Metadata`
/// (`filename`, `filetype`, `tags`, `ttl`, base64 values) and `Upload-Concat` (`partial`, or
/// `final;<url> ...` to concatenate complete partial uploads). With `Content-Type:
/// application/offset+octet-stream` the body is the upload's first bytes
/// (creation-with-upload). The upload's bytes count against the caller's quota at once.
#[utoipa::path(
    post,
    path = "/api/v1/files/tus/",
    tag = TAG,
    params(
        ("Tus-Resumable" = inline(TusVersion), Header, description = "The tus version: 1.0.0 (412 otherwise)"),
        ("Upload-Length" = u64, Header, description = "The upload's size in bytes (or send `Upload-Defer-Length: 1` instead); at most Tus-Max-Size"),
    ),
    responses(
        (status = 201, description = "Created; Location is the upload URL, Upload-Offset the bytes kept"),
        (status = 400, description = "A tus header is malformed; `errors[0].field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Tus-Resumable is not 1.0.0", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over Tus-Max-Size (`too-large`) or the caller's quota (`quota-exceeded`)", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    tus(create_inner(&state, who.subject(), &headers, body).await)
}

async fn create_inner(
    state: &AppState,
    owner: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    check_version(headers)?;
    let length = text(headers, "upload-length")
        .map(|v| tus::parse_size("Upload-Length", v))
        .transpose()
        .map_err(header_problem)?;
    let deferred = match text(headers, "upload-defer-length") {
        None => false,
        Some("1") => true,
        Some(_) => return Err(Problem::invalid("Upload-Defer-Length", "must be 1")),
    };
    let concat = text(headers, "upload-concat")
        .map(tus::parse_concat)
        .transpose()
        .map_err(header_problem)?;
    let is_final = matches!(concat, Some(Concat::Final(_)));
    match (length, deferred, is_final) {
        (Some(_), true, _) => {
            return Err(Problem::invalid(
                "Upload-Defer-Length",
                "send either Upload-Length or Upload-Defer-Length: 1, not both",
            ));
        }
        (Some(_), _, true) => {
            return Err(Problem::invalid(
                "Upload-Length",
                "a final upload's length is the sum of its partial uploads; do not send it",
            ));
        }
        (None, false, false) => {
            return Err(Problem::invalid(
                "Upload-Length",
                "is required (or Upload-Defer-Length: 1)",
            ));
        }
        _ => {}
    }
    let metadata = text(headers, "upload-metadata")
        .unwrap_or_default()
        .to_owned();
    describe::check(&metadata).map_err(|(field, message)| Problem::invalid(field, message))?;
    let with_body = text(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|t| t.starts_with(tus::OFFSET_OCTET_STREAM));
    let checksum = text(headers, "upload-checksum")
        .map(tus::parse_checksum)
        .transpose()
        .map_err(header_problem)?;
    let upload = state
        .files
        .create(NewUpload {
            owner: owner.to_owned(),
            length,
            metadata,
            concat,
        })
        .await?;
    let upload = if with_body && !is_final && !upload.is_full() {
        let appended = state
            .files
            .append(
                Append {
                    owner: owner.to_owned(),
                    id: upload.id.clone(),
                    offset: 0,
                    checksum,
                    length: None,
                    ends_upload: false,
                },
                body_stream(body),
            )
            .await;
        match appended {
            Ok(u) => u,
            // An interrupted body keeps what arrived: the client resumes from the upload URL.
            Err(FilesError::BodyFailed(_)) => state.files.upload_of(owner, &upload.id).await?,
            Err(e) => return Err(e.into()),
        }
    } else {
        upload
    };
    let mut res = StatusCode::CREATED.into_response();
    res.headers_mut()
        .insert(header::LOCATION, hv(&upload_url(&upload.id)));
    describe_upload(&mut res, &upload, false);
    Ok(res)
}

/// An upload's offset, length and metadata (tus core).
#[utoipa::path(
    head,
    path = "/api/v1/files/tus/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = inline(TusVersion), Header, description = "The tus version: 1.0.0 (412 otherwise)")),
    responses(
        (status = 200, description = "Upload-Offset, Upload-Length (or Upload-Defer-Length), Upload-Metadata, Upload-Expires, Upload-Concat"),
        (status = 400, description = "No Tus-Resumable"),
        (status = 404, description = "No such upload among the caller's"),
        (status = 410, description = "The upload expired"),
        (status = 412, description = "Tus-Resumable is not 1.0.0"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn head(
    State(state): State<AppState>,
    who: Require<FilesRead>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    tus(async {
        check_version(&headers)?;
        let upload = state.files.upload_of(who.subject(), &id).await?;
        let upload = if upload.completed_at.is_none() && upload.is_full() {
            state.files.finish_if_full(&upload).await?;
            state.files.upload_of(who.subject(), &id).await?
        } else {
            upload
        };
        let mut res = StatusCode::OK.into_response();
        describe_upload(&mut res, &upload, true);
        Ok(res)
    }
    .await)
}

/// Append bytes at the upload's offset (tus core; checksum; deferred length).
///
/// The body is the bytes that follow the offset, sent as `application/offset+octet-stream`
/// (415 otherwise).
///
/// `Upload-Offset` must be the upload's offset (409 otherwise: HEAD and resume). With
/// `Upload-Checksum` (sha1, sha256 or md5) the body is kept only if its digest matches (460
/// otherwise). An interrupted body keeps the bytes that arrived.
#[utoipa::path(
    patch,
    path = "/api/v1/files/tus/{id}",
    tag = TAG,
    params(
        ("id" = String, Path, description = "The upload"),
        ("Tus-Resumable" = inline(TusVersion), Header, description = "The tus version: 1.0.0 (412 otherwise)"),
        ("Upload-Offset" = u64, Header, description = "The upload's offset, as HEAD gave it"),
    ),
    responses(
        (status = 204, description = "Appended; Upload-Offset is the new offset"),
        (status = 400, description = "A tus header is malformed (an unsupported checksum algorithm too)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "PATCH on a final upload", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such upload among the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Upload-Offset is not the upload's offset", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The upload expired", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Tus-Resumable is not 1.0.0", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Past the upload's length, or the quota", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not application/offset+octet-stream", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Another PATCH is appending; retry", body = Problem, content_type = "application/problem+json"),
        (status = 460, description = "The body's digest does not match Upload-Checksum; nothing was kept", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn patch(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    tus(patch_inner(&state, who.subject(), &id, &headers, body).await)
}

async fn patch_inner(
    state: &AppState,
    owner: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    check_version(headers)?;
    match text(headers, header::CONTENT_TYPE.as_str()) {
        Some(t) if t.starts_with(tus::OFFSET_OCTET_STREAM) => {}
        other => {
            return Err(FilesError::UnsupportedMediaType(format!(
                "a PATCH body must be {} (got {})",
                tus::OFFSET_OCTET_STREAM,
                other.unwrap_or("no Content-Type")
            ))
            .into());
        }
    }
    let offset = match text(headers, "upload-offset") {
        Some(v) => tus::parse_size("Upload-Offset", v).map_err(header_problem)?,
        None => return Err(Problem::invalid("Upload-Offset", "is required")),
    };
    let length = text(headers, "upload-length")
        .map(|v| tus::parse_size("Upload-Length", v))
        .transpose()
        .map_err(header_problem)?;
    let checksum = text(headers, "upload-checksum")
        .map(tus::parse_checksum)
        .transpose()
        .map_err(header_problem)?;
    let upload = state
        .files
        .append(
            Append {
                owner: owner.to_owned(),
                id: id.to_owned(),
                offset,
                checksum,
                length,
                ends_upload: false,
            },
            body_stream(body),
        )
        .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    describe_upload(&mut res, &upload, false);
    Ok(res)
}

/// Terminate an upload (tus termination): its bytes are deleted. On a completed upload, this
/// deletes the file.
#[utoipa::path(
    delete,
    path = "/api/v1/files/tus/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = inline(TusVersion), Header, description = "The tus version: 1.0.0 (412 otherwise)")),
    responses(
        (status = 204, description = "Terminated"),
        (status = 400, description = "No Tus-Resumable", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such upload among the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Tus-Resumable is not 1.0.0", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn terminate(
    State(state): State<AppState>,
    who: Require<FilesWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    tus(async {
        check_version(&headers)?;
        state.files.terminate(who.subject(), &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await)
}

/// Download a completed upload, as tusd does (the same answers as the file's content route:
/// ranges, ETag, Content-Disposition).
#[utoipa::path(
    get,
    path = "/api/v1/files/tus/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The upload")),
    responses(
        (status = 200, description = "The file's bytes"),
        (status = 206, description = "The ranges asked for"),
        (status = 404, description = "No such upload among the caller's, or not complete", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    who: Require<FilesRead>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    tus(async {
        let upload = state.files.upload_of(who.subject(), &id).await?;
        if upload.completed_at.is_none() || upload.kind == UploadKind::Partial {
            return Err(FilesError::NotFound(format!(
                "upload {id} is not a complete file yet ({} of {} bytes)",
                upload.offset,
                upload.length.map_or("?".to_owned(), |l| l.to_string())
            ))
            .into());
        }
        let file = state
            .files
            .authorise(
                Some(&id),
                crate::workers::files::Access::Owner(who.subject()),
            )
            .await?;
        download::respond(&state.files, &file, &method, &headers, "private, no-cache").await
    }
    .await)
}
