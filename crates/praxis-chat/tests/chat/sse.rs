//! A Server-Sent Events reader for the cases: the chat's stream read chunk by chunk from the
//! in-process app.

use axum::Router;
use axum::body::{Body, BodyDataStream};
use axum::http::{Method, Request};
use futures::StreamExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::ws::DEADLINE;

/// An open event stream.
pub struct SseClient {
    body: BodyDataStream,
    buffer: String,
}

/// Opens `GET /api/v1/chat/events?follow=...` as `user`: the stream, or the status and body of
/// the refusal.
pub async fn open(
    app: &Router,
    user: Option<&str>,
    follow: &str,
) -> Result<SseClient, (u16, Value)> {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(format!("/api/v1/chat/events?follow={follow}"));
    if let Some(user) = user {
        req = req.header("authorization", format!("Bearer u:{user}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().into_data_stream();
    if status != 200 {
        let mut client = SseClient {
            body,
            buffer: String::new(),
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = client.body.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        return Err((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ));
    }
    Ok(SseClient {
        body,
        buffer: String::new(),
    })
}

impl SseClient {
    /// The next event's JSON frame (comments and keep-alives skipped).
    pub async fn frame(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() {
                    let frame: Value = serde_json::from_str(&data.join("\n")).unwrap();
                    if frame["type"] != "presence" {
                        return frame;
                    }
                }
                continue;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.body.next())
                .await
                .expect("an event within the deadline")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next frame, which must be a message; returns the message.
    pub async fn expect_message(&mut self) -> Value {
        let frame = self.frame().await;
        assert_eq!(frame["type"], "message", "{frame}");
        frame["message"].clone()
    }
}
