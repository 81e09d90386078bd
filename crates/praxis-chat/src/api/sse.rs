//! The SSE fallback at `GET /api/v1/chat/events?follow=<id>[:<after>],...`, for clients that
//! cannot open a WebSocket: the same frames as the socket's server side, one per event (`data:`
//! is the JSON frame, its `type` inside), for the conversations named in `follow`. With
//! `:<after>` a conversation's missing messages come first, exactly as a socket's `subscribe`
//! with `after`. Sending, receipts and typing go through the REST routes. A client that reads
//! too slowly gets an `error` frame with code `slow-consumer` and the stream ends: reconnect
//! with the last sequence held per conversation.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Problem, Query, Require};

use super::auth::ChatRead;
use super::session::{Session, error_frame};
use super::{AppState, TAG};
use crate::workers::live::Connection;

/// Most conversations one stream follows.
pub const FOLLOW_MAX: usize = 100;
/// Comment lines sent while nothing happens, so proxies keep the stream open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Query of `GET /api/v1/chat/events`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Conversations to follow, comma-separated, each `id` (live from now) or `id:after`
    /// (the messages after that sequence first); at most 100.
    #[param(
        pattern = "^ *[!-+\\--9;-~]{1,128}(:[0-9]{1,18})?( *, *[!-+\\--9;-~]{1,128}(:[0-9]{1,18})?){0,99} *$"
    )]
    pub follow: String,
    /// The access token, for browsers' `EventSource`, which cannot send an `Authorization`
    /// header (read by the authentication layer, only on `Accept: text/event-stream`).
    pub access_token: Option<String>,
}

/// Stream a conversation's events as Server-Sent Events (the WebSocket fallback).
///
/// Frames as on the WebSocket: `message`, `subscribed`, `receipt`, `typing`, `error`.
#[utoipa::path(
    get,
    path = "/api/v1/chat/events",
    tag = TAG,
    params(EventsParams),
    responses(
        (status = 200, description = "An endless text/event-stream of JSON frames", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad follow list", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A conversation is not among the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The account holds connections_per_account live connections already", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    Query(params): Query<EventsParams>,
) -> Result<Response, Problem> {
    let me = who.subject().to_owned();
    let follows = parse_follow(&params.follow)?;
    let mut session = Session::new(state, me.clone(), false);
    for (conversation, _) in &follows {
        session.chat().last_seq(&me, conversation).await?;
    }
    let conn = session.chat().connect(&me)?;
    session.heartbeat().await;
    let mut beats = tokio::time::interval(session.heartbeat_every());
    beats.tick().await;
    let mut pending = VecDeque::new();
    for (conversation, after) in &follows {
        pending.extend(session.subscribe(&conn, conversation, *after).await);
    }
    let stream = Stream {
        beats,
        shutdown: session.shutdown(),
        session,
        conn,
        pending,
        done: false,
    };
    let events = futures::stream::unfold(stream, |mut s| async move {
        let frame = s.next().await?;
        Some((Ok::<_, Infallible>(SseEvent::default().data(frame)), s))
    });
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT));
    Ok((
        StatusCode::OK,
        [("cache-control", "no-cache"), ("x-accel-buffering", "no")],
        sse,
    )
        .into_response())
}

/// Reads `id[:after],...`: 1 to 100 items, each a conversation id (1 to 128 visible ASCII
/// characters without `,` or `:`) and optionally `:` and the last sequence held (1 to 18
/// digits); spaces are allowed around the commas. Anything else is a 400
/// naming `follow` (what the OpenAPI pattern says). A conversation named twice is followed
/// once, from the first `after` given.
fn parse_follow(text: &str) -> Result<Vec<(String, Option<i64>)>, Problem> {
    let bad = |why: String| Problem::invalid("follow", why);
    let id_ok = |id: &str| {
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b',' && b != b':')
    };
    let mut follows: Vec<(String, Option<i64>)> = Vec::new();
    let items: Vec<&str> = text.split(',').map(|i| i.trim_matches(' ')).collect();
    if items.len() > FOLLOW_MAX {
        return Err(bad(format!(
            "at most {FOLLOW_MAX} conversations per stream, got {}",
            items.len()
        )));
    }
    for item in items {
        let (id, after) = match item.split_once(':') {
            Some((id, after)) => {
                let digits =
                    (1..=18).contains(&after.len()) && after.bytes().all(|b| b.is_ascii_digit());
                match after.parse::<i64>() {
                    Ok(after) if digits => (id, Some(after)),
                    _ => {
                        return Err(bad(format!(
                            "{item:?}: after a ':' comes the last sequence held (1 to 18 digits)"
                        )));
                    }
                }
            }
            None => (item, None),
        };
        if !id_ok(id) {
            return Err(bad(
                "give conversation ids, comma-separated, each optionally with :after".to_owned(),
            ));
        }
        if !follows.iter().any(|(known, _)| known == id) {
            follows.push((id.to_owned(), after));
        }
    }
    Ok(follows)
}

/// One SSE client: its session, its queue, the frames not yet sent.
struct Stream {
    beats: tokio::time::Interval,
    session: Session,
    conn: Connection,
    pending: VecDeque<String>,
    shutdown: CancellationToken,
    done: bool,
}

impl Stream {
    /// The next frame, or `None` when the stream ends.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.done {
                return None;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                _ = self.beats.tick() => self.session.heartbeat().await,
                () = self.conn.overflow.cancelled() => {
                    self.done = true;
                    self.pending.push_back(error_frame(
                        "slow-consumer",
                        "too slow: your queue of events is full; reconnect with follow=<id>:<last sequence held>".to_owned(),
                        None,
                        None,
                    ));
                }
                event = self.conn.events.recv() => match event {
                    Some(delivery) => {
                        let frames = self.session.on_event(&delivery).await;
                        self.pending.extend(frames.iter().map(|f| f.as_str().to_owned()));
                    }
                    None => return None,
                },
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.session
            .chat()
            .live()
            .forget(self.conn.id, self.session.followed());
        // The connection's place is freed when `conn` drops, right after this.
        self.session.close_later();
    }
}
