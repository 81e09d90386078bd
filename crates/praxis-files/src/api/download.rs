//! The bytes of a file as an HTTP response: `Range` (one or several ranges), `If-Range`,
//! `ETag` with `If-None-Match`, `Content-Disposition`, and the declared type unless the
//! content says otherwise. Shared by the owner's download, signed URLs, public links and GET
//! on a tus upload URL.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use praxis_http::Problem;

use crate::domain::model::FileMeta;
use crate::domain::range::{self, Ranges};
use crate::workers::Files;

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `Content-Disposition` for `name`: an ASCII fallback and the RFC 8187 UTF-8 form.
pub fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The type a file is served as: its declared type, unless its content shows another (then
/// `application/octet-stream`, as an attachment: a file never runs as what it is not).
fn served_type(file: &FileMeta) -> (&str, &'static str) {
    if file.type_mismatch() {
        ("application/octet-stream", "attachment")
    } else if is_active(&file.content_type) {
        (file.content_type.as_str(), "attachment")
    } else {
        (file.content_type.as_str(), "inline")
    }
}

/// Whether a browser would run content of type `t` (markup, scripts): such files are always
/// downloaded as attachments, whatever they declare, so a shared link never runs script on
/// this origin.
pub fn is_active(t: &str) -> bool {
    let bare = t
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        bare.as_str(),
        "text/html"
            | "text/xml"
            | "application/xml"
            | "text/javascript"
            | "application/javascript"
            | "application/ecmascript"
            | "text/ecmascript"
            | "application/pdf"
    ) || bare.ends_with("+xml")
}

fn common_headers(headers: &mut HeaderMap, file: &FileMeta, cache: &'static str) {
    let (_, kind) = served_type(file);
    headers.insert(header::ETAG, value(&file.etag()));
    headers.insert(
        header::LAST_MODIFIED,
        value(&crate::domain::tus::http_date(file.created_at)),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    // Whatever a browser makes of the bytes, they run in a sandbox without this origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&disposition(kind, &file.name)),
    );
}

/// The response to a GET or HEAD of `file`'s bytes. `cache` is the `Cache-Control` value
/// (`private, no-cache` for owners and signed URLs).
pub async fn respond(
    files: &Files,
    file: &FileMeta,
    method: &Method,
    req: &HeaderMap,
    cache: &'static str,
) -> Result<Response, Problem> {
    let etag = file.etag();
    let mut res = Response::new(Body::empty());
    common_headers(res.headers_mut(), file, cache);
    if let Some(inm) = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && range::none_match(inm, &etag)
    {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(res);
    }
    let size = file.size;
    let range_header = req.get(header::RANGE).and_then(|v| v.to_str().ok());
    let honour = match req.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        Some(cond) => range::if_range_holds(cond, &etag, file.created_at / 1000),
        None => true,
    };
    let ranges = if honour {
        range::parse(range_header, size)
    } else {
        Ranges::Whole
    };
    let (content_type, _) = served_type(file);
    let head = method == Method::HEAD;
    match ranges {
        Ranges::Unsatisfiable => {
            let mut p = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
                format!("no requested range starts before the file's end ({size} bytes)"),
            )
            .into_response();
            p.headers_mut()
                .insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
            Ok(p)
        }
        Ranges::Whole => {
            res.headers_mut()
                .insert(header::CONTENT_TYPE, value(content_type));
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, value(&size.to_string()));
            if !head {
                *res.body_mut() = Body::from_stream(files.open(file, 0..size).await?);
            }
            Ok(res)
        }
        Ranges::One(r) => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut()
                .insert(header::CONTENT_TYPE, value(content_type));
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {}-{}/{size}", r.start, r.end - 1)),
            );
            res.headers_mut().insert(
                header::CONTENT_LENGTH,
                value(&(r.end - r.start).to_string()),
            );
            if !head {
                *res.body_mut() = Body::from_stream(files.open(file, r).await?);
            }
            Ok(res)
        }
        Ranges::Many(list) => {
            let boundary = uuid::Uuid::new_v4().simple().to_string();
            let heads: Vec<Bytes> = list
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    Bytes::from(format!(
                        "{}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                        if i == 0 { "" } else { "\r\n" },
                        r.start,
                        r.end - 1
                    ))
                })
                .collect();
            let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
            let length: u64 = heads.iter().map(|h| h.len() as u64).sum::<u64>()
                + list.iter().map(|r| r.end - r.start).sum::<u64>()
                + tail.len() as u64;
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                value(&format!("multipart/byteranges; boundary={boundary}")),
            );
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, value(&length.to_string()));
            if !head {
                let files = files.clone();
                let file = file.clone();
                let parts = futures::stream::iter(heads.into_iter().zip(list))
                    .then(move |(h, r)| {
                        let files = files.clone();
                        let file = file.clone();
                        async move {
                            let body = files
                                .open(&file, r)
                                .await
                                .map_err(|e| std::io::Error::other(e.to_string()))?;
                            Ok::<_, std::io::Error>(
                                futures::stream::once(async move { Ok(h) }).chain(body),
                            )
                        }
                    })
                    .try_flatten()
                    .chain(futures::stream::once(async move { Ok(tail) }));
                *res.body_mut() = Body::from_stream(parts);
            }
            Ok(res)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_carry_both_forms() {
        assert_eq!(
            disposition("inline", "a b.txt"),
            "inline; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        assert_eq!(
            disposition("attachment", "naïve\".pdf"),
            "attachment; filename=\"na_ve_.pdf\"; filename*=UTF-8''na%C3%AFve%22.pdf"
        );
    }
}
