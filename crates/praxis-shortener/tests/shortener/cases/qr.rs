//! QR codes.

use axum::http::Method;
use serde_json::json;

use crate::support::{Harness, code};

pub async fn qr_codes(h: &Harness) {
    let c = code(&h.create(json!({"url": "https://example.com/qr"})).await);
    let png = h
        .call(Method::GET, &format!("/api/v1/links/{c}/qr"), None)
        .await;
    assert_eq!(png.status.as_u16(), 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(&png.body[..8], b"\x89PNG\r\n\x1a\n");

    let svg = h
        .call(
            Method::GET,
            &format!("/api/v1/links/{c}/qr?format=svg&size=128"),
            None,
        )
        .await;
    assert_eq!(svg.status.as_u16(), 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(String::from_utf8_lossy(&svg.body).contains("<svg"));

    for bad in [
        "format=gif",
        "size=10",
        "size=99999",
        "size=big",
        "colour=red",
    ] {
        h.call(Method::GET, &format!("/api/v1/links/{c}/qr?{bad}"), None)
            .await
            .problem(400);
    }
    h.call(Method::GET, "/api/v1/links/nope999/qr", None)
        .await
        .problem(404);
    h.call_with(Method::GET, &format!("/api/v1/links/{c}/qr"), None, &[])
        .await
        .problem(401);
}
