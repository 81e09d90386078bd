//! The WebSocket cases, each on a fresh backend, with real sockets on loopback.

use axum::http::Method;
use praxis_chat::ChatSettings;
use praxis_testkit::Kind;
use serde_json::json;

use crate::support::Harness;
use crate::ws::{Ws, seq_of, serve};

pub async fn ws_delivers_messages_live_and_in_order(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    let mut alice = Ws::connect(addr, "alice").await;
    let mut bob = Ws::connect(addr, "bob").await;
    assert!(alice.subscribe(&c, None).await.is_empty());
    assert!(bob.subscribe(&c, None).await.is_empty());
    for i in 1..=20 {
        alice
            .send(json!({"type": "send", "conversation_id": c, "client_id": format!("a{i}"), "body": format!("hi {i}")}))
            .await;
    }
    let got = bob.messages(20).await;
    assert_eq!(seq_of(&got), (1..=20).collect::<Vec<_>>());
    assert_eq!(got[0]["body"], "hi 1");
    assert_eq!(got[0]["sender"], "alice");
    let own = alice.messages(20).await;
    assert_eq!(
        seq_of(&own),
        (1..=20).collect::<Vec<_>>(),
        "the sender sees its own, in order"
    );
    // A message sent over REST joins the same sequence and reaches both sockets.
    h.send("bob", &c, "b1", "from rest").await.ok(201);
    assert_eq!(seq_of(&bob.messages(1).await), [21]);
    assert_eq!(seq_of(&alice.messages(1).await), [21]);
    // A resend over the socket answers the first copy, and nobody gets it twice.
    alice
        .send(json!({"type": "send", "conversation_id": c, "client_id": "a1", "body": "hi 1"}))
        .await;
    let again = alice.expect("message").await;
    assert_eq!(again["message"]["seq"], 1);
    // Edits and deletes reach the subscribers as the message again.
    h.as_user(
        "alice",
        Method::DELETE,
        &format!("/api/v1/chat/conversations/{c}/messages/2"),
        None,
    )
    .await
    .ok(200);
    let changed = bob.expect("message").await;
    assert_eq!(changed["message"]["seq"], 2);
    assert_eq!(changed["message"]["deleted"], true);
}

pub async fn ws_catches_up_exactly_the_missing_messages(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    for i in 1..=5 {
        h.send("alice", &c, &format!("c{i}"), "before")
            .await
            .ok(201);
    }
    let mut bob = Ws::connect(addr, "bob").await;
    let missed = bob.subscribe(&c, Some(2)).await;
    assert_eq!(seq_of(&missed), [3, 4, 5]);
    h.send("alice", &c, "c6", "live").await.ok(201);
    assert_eq!(seq_of(&bob.messages(1).await), [6]);
    // Disconnected, three more are sent; reconnecting with the last one held gets those only.
    drop(bob);
    for i in 7..=9 {
        h.send("alice", &c, &format!("c{i}"), "while away")
            .await
            .ok(201);
    }
    let mut bob = Ws::connect(addr, "bob").await;
    assert_eq!(seq_of(&bob.subscribe(&c, Some(6)).await), [7, 8, 9]);
    // Catch-up across several pages of history.
    let small = Harness::with(
        kind,
        ChatSettings {
            page_max: 2,
            ..crate::support::settings()
        },
        &[],
    )
    .await;
    let addr = serve(small.app.clone()).await;
    let c = small.direct("alice", "bob").await;
    for i in 1..=7 {
        small.send("alice", &c, &format!("c{i}"), "x").await.ok(201);
    }
    let mut bob = Ws::connect(addr, "bob").await;
    assert_eq!(
        seq_of(&bob.subscribe(&c, Some(0)).await),
        (1..=7).collect::<Vec<_>>()
    );
}

pub async fn ws_typing_and_receipts_reach_the_other_members(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    h.send("alice", &c, "c1", "hello").await.ok(201);
    h.send("alice", &c, "c2", "again").await.ok(201);
    let mut alice = Ws::connect(addr, "alice").await;
    let mut bob = Ws::connect(addr, "bob").await;
    alice.subscribe(&c, None).await;
    bob.subscribe(&c, None).await;
    bob.send(json!({"type": "typing", "conversation_id": c}))
        .await;
    let typing = alice.expect("typing").await;
    assert_eq!(typing["account"], "bob");
    let markers = |r: &serde_json::Value| {
        (
            r["account"].as_str().map(str::to_owned),
            r["delivered_seq"].as_i64(),
            r["read_seq"].as_i64(),
        )
    };
    // Delivered first (a device has both), then read up to 1.
    bob.send(json!({"type": "ack", "conversation_id": c, "seq": 2}))
        .await;
    assert_eq!(
        markers(&alice.expect("receipt").await),
        (Some("bob".into()), Some(2), Some(0))
    );
    bob.send(json!({"type": "read", "conversation_id": c, "seq": 1}))
        .await;
    assert_eq!(
        markers(&alice.expect("receipt").await),
        (Some("bob".into()), Some(2), Some(1))
    );
    // A marker that does not move tells nobody: the next frame alice gets is the typing.
    bob.send(json!({"type": "ack", "conversation_id": c, "seq": 1}))
        .await;
    bob.send(json!({"type": "typing", "conversation_id": c}))
        .await;
    assert_eq!(alice.expect("typing").await["account"], "bob");
    // Reading past the delivery marker moves both.
    bob.send(json!({"type": "read", "conversation_id": c, "seq": 9}))
        .await;
    assert_eq!(
        markers(&alice.expect("receipt").await),
        (Some("bob".into()), Some(2), Some(2))
    );
    let view = h
        .as_user(
            "alice",
            Method::GET,
            &format!("/api/v1/chat/conversations/{c}"),
            None,
        )
        .await
        .ok(200);
    let bob_view = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["account"] == "bob")
        .unwrap();
    assert_eq!(
        (
            bob_view["delivered_seq"].as_i64(),
            bob_view["read_seq"].as_i64()
        ),
        (Some(2), Some(2))
    );
    // Bob got his own receipts, but not his own typing.
    assert_eq!(bob.expect("receipt").await["account"], "bob");
    bob.send(json!({"type": "ack", "conversation_id": c, "seq": -1}))
        .await;
    let mut next = bob.frame().await;
    while next["type"] == "receipt" {
        next = bob.frame().await;
    }
    assert_eq!(next["code"], "invalid", "{next}");
}

pub async fn ws_bad_frames_and_non_members_get_errors(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    let mut eve = Ws::connect(addr, "eve").await;
    eve.send_raw(tokio_tungstenite::tungstenite::Message::text("{not json"))
        .await;
    assert_eq!(eve.expect("error").await["code"], "bad-frame");
    eve.send(json!({"type": "dance"})).await;
    assert_eq!(eve.expect("error").await["code"], "bad-frame");
    eve.send(json!({"type": "subscribe"})).await;
    assert_eq!(eve.expect("error").await["code"], "bad-frame");
    eve.send(json!({"type": "subscribe", "conversation_id": c, "after": -1}))
        .await;
    assert_eq!(eve.expect("error").await["code"], "bad-frame");
    eve.send_binary().await;
    assert_eq!(eve.expect("error").await["code"], "bad-frame");
    // Not a member: the same answer as for a conversation that does not exist.
    eve.send(json!({"type": "subscribe", "conversation_id": c}))
        .await;
    let e = eve.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["conversation_id"].as_str()),
        (Some("not-found"), Some(c.as_str()))
    );
    eve.send(json!({"type": "send", "conversation_id": c, "client_id": "x", "body": "let me in"}))
        .await;
    let e = eve.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("not-found"), Some("x"))
    );
    eve.send(json!({"type": "typing", "conversation_id": c}))
        .await;
    assert_eq!(eve.expect("error").await["code"], "not-found");
    // Invalid input names the field, and the socket stays usable.
    let mut alice = Ws::connect(addr, "alice").await;
    alice
        .send(json!({"type": "send", "conversation_id": c, "client_id": "bad id", "body": "x"}))
        .await;
    let e = alice.expect("error").await;
    assert_eq!(e["code"], "invalid");
    assert!(e["detail"].as_str().unwrap().contains("client_id"), "{e}");
    assert!(
        alice.subscribe(&c, Some(0)).await.is_empty(),
        "nothing was stored"
    );
    // A frame over the size limit ends the connection, and nothing else.
    let huge = "x".repeat(crate::support::settings().max_message_bytes + 8192);
    alice
        .send(json!({"type": "send", "conversation_id": c, "client_id": "big", "body": huge}))
        .await;
    assert!(
        alice.next().await.is_err(),
        "the oversized frame closes the socket"
    );
    // Without credentials the handshake is refused.
    assert_eq!(Ws::refused(addr, None).await, 401);
    // And a plain GET is a problem, not a crash.
    h.as_user("alice", Method::GET, "/api/v1/chat/ws", None)
        .await
        .problem(400);
}

pub async fn ws_slow_client_is_closed_and_catches_up(kind: Kind) {
    let settings = ChatSettings {
        outbound_queue: 2,
        ..crate::support::settings()
    };
    let h = Harness::with(kind, settings, &[]).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    let mut slow = Ws::connect_small(addr, "bob").await;
    slow.subscribe(&c, None).await;
    // Bob stops reading while alice sends far more than the socket buffers and his queue hold;
    // every send is answered all the same (a slow reader slows nobody).
    const SENT: i64 = 300;
    let body = "y".repeat(16_000);
    for i in 1..=SENT {
        h.send("alice", &c, &format!("c{i}"), &body).await.ok(201);
    }
    // Bob reads what was sent to him before the server gave up, then the close frame.
    let mut got = Vec::new();
    let close = loop {
        match slow.next().await {
            Ok(frame) => {
                assert_eq!(frame["type"], "message", "{frame}");
                got.push(frame["message"]["seq"].as_i64().unwrap());
            }
            Err(close) => break close,
        }
    };
    let close = close.expect("a close frame with a reason");
    assert_eq!(u16::from(close.code), 4008, "{close:?}");
    assert!(
        (got.len() as i64) < SENT,
        "the server gave up before sending everything"
    );
    assert_eq!(
        got,
        (1..=got.len() as i64).collect::<Vec<_>>(),
        "what came, came in order"
    );
    // Reconnecting with the last one held gets exactly the rest.
    let mut bob = Ws::connect(addr, "bob").await;
    let last = got.last().copied().unwrap_or(0);
    let rest = bob.subscribe(&c, Some(last)).await;
    assert_eq!(seq_of(&rest), ((last + 1)..=SENT).collect::<Vec<_>>());
}

pub async fn ws_clients_on_two_processes_see_every_message() {
    let (a, b) = praxis_testkit::scaled_pair().await;
    let a = Harness::on(a, crate::support::settings(), &[]).await;
    let b = Harness::on(b, crate::support::settings(), &[]).await;
    let (addr_a, addr_b) = (serve(a.app.clone()).await, serve(b.app.clone()).await);
    let g = a.group("u0", &["u1", "u2"]).await;
    let mut on_a = Ws::connect(addr_a, "u1").await;
    let mut on_b = Ws::connect(addr_b, "u2").await;
    on_a.subscribe(&g, None).await;
    on_b.subscribe(&g, None).await;
    // Senders on both processes at once.
    let sends = (0..30).map(|i| {
        let (h, g) = (if i % 2 == 0 { &a } else { &b }, &g);
        async move { h.send("u0", g, &format!("m{i}"), "hi").await.ok(201) }
    });
    futures::future::join_all(sends).await;
    assert_eq!(
        seq_of(&on_a.messages(30).await),
        (1..=30).collect::<Vec<_>>()
    );
    assert_eq!(
        seq_of(&on_b.messages(30).await),
        (1..=30).collect::<Vec<_>>()
    );
    // Typing crosses processes too.
    on_a.send(json!({"type": "typing", "conversation_id": g}))
        .await;
    assert_eq!(on_b.expect("typing").await["account"], "u1");
}

pub async fn python_websockets_client_catches_up_and_sends(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    for i in 1..=3 {
        h.send("alice", &c, &format!("c{i}"), &format!("m{i}"))
            .await
            .ok(201);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chat/ws_client.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(format!("ws://{addr}/api/v1/chat/ws"))
        .arg("u:bob")
        .arg(&c)
        .arg("1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(crate::ws::DEADLINE * 2, run)
        .await
        .expect("ws_client.py finished")
        .expect("python3 must be installed with websockets (scripts/test installs them)");
    assert!(
        out.status.success(),
        "ws_client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["message", "message", "subscribed", "message", "error"],
        "{frames:?}"
    );
    assert_eq!(
        (
            frames[0]["message"]["seq"].as_i64(),
            frames[1]["message"]["seq"].as_i64()
        ),
        (Some(2), Some(3))
    );
    assert_eq!(frames[1]["message"]["body"], "m3");
    assert_eq!(frames[2]["last_seq"], 3);
    assert_eq!(frames[3]["message"]["seq"], 4);
    assert_eq!(frames[3]["message"]["client_id"], "py-1");
    assert_eq!(frames[4]["code"], "bad-frame");
    // What the outside client sent is stored like any other message.
    let page = h.history("alice", &c, "after=3").await;
    assert_eq!(page["messages"][0]["body"], "from python");
    assert_eq!(page["messages"][0]["sender"], "bob");
}

pub async fn sse_catches_up_then_streams(kind: Kind) {
    let h = Harness::start(kind).await;
    let c = h.direct("alice", "bob").await;
    let other = h.direct("bob", "carol").await;
    for i in 1..=3 {
        h.send("alice", &c, &format!("c{i}"), &format!("m{i}"))
            .await
            .ok(201);
    }
    let mut bob = crate::sse::open(&h.app, Some("bob"), &format!("{c}:1,{other}"))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    let mut seqs = Vec::new();
    for _ in 0..4 {
        let frame = bob.frame().await;
        kinds.push(frame["type"].as_str().unwrap().to_owned());
        if frame["type"] == "message" {
            seqs.push(frame["message"]["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(kinds, ["message", "message", "subscribed", "subscribed"]);
    assert_eq!(seqs, [2, 3]);
    h.send("carol", &other, "x1", "to bob").await.ok(201);
    let live = bob.expect_message().await;
    assert_eq!(
        (live["conversation_id"].as_str(), live["seq"].as_i64()),
        (Some(other.as_str()), Some(1))
    );
    h.send("alice", &c, "c4", "m4").await.ok(201);
    assert_eq!(bob.expect_message().await["seq"], 4);
    // Refusals are problems, before any stream starts.
    let (status, body) = crate::sse::open(&h.app, Some("eve"), &c)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 404, "{body}");
    for follow in [
        "",
        format!("{c}:x").as_str(),
        format!("{c}:-1").as_str(),
        ",",
    ] {
        let (status, body) = crate::sse::open(&h.app, Some("bob"), follow)
            .await
            .err()
            .unwrap();
        assert_eq!(status, 400, "{follow}: {body}");
        assert_eq!(body["errors"][0]["field"], "follow", "{body}");
    }
    let (status, _) = crate::sse::open(&h.app, None, &c).await.err().unwrap();
    assert_eq!(status, 401);
}

pub async fn limits_refuse_with_429(kind: Kind) {
    let settings = ChatSettings {
        send_rate: 1,
        connections_per_account: 2,
        ..crate::support::settings()
    };
    let h = Harness::with(kind, settings, &[]).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    // One message per second, burst one: back-to-back sends are refused after the first.
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = h.send("alice", &c, &format!("r{i}"), "fast").await;
        if r.status.as_u16() == 429 {
            let p = r.problem(429);
            assert!(p["detail"].as_str().unwrap().contains("send_rate"), "{p}");
            assert!(r.header("retry-after").is_some(), "429 says when to retry");
        }
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses[0], 201);
    assert!(statuses.contains(&429), "{statuses:?}");
    // Over the socket, the refusal is an error frame and the socket stays open.
    let mut alice = Ws::connect(addr, "alice").await;
    alice
        .send(json!({"type": "send", "conversation_id": c, "client_id": "w1", "body": "x"}))
        .await;
    alice
        .send(json!({"type": "send", "conversation_id": c, "client_id": "w2", "body": "x"}))
        .await;
    let mut codes = Vec::new();
    for _ in 0..2 {
        let frame = alice.frame().await;
        codes.push(frame["code"].as_str().unwrap_or("message").to_owned());
    }
    assert!(codes.iter().any(|c| c == "rate-limited"), "{codes:?}");
    // Two live connections per account: the third is refused until one closes.
    let second = Ws::connect(addr, "alice").await;
    assert_eq!(Ws::try_connect(addr, "alice").await.err(), Some(429));
    assert!(
        Ws::try_connect(addr, "bob").await.is_ok(),
        "the limit is per account"
    );
    drop(second);
    praxis_testkit::eventually(
        crate::ws::DEADLINE,
        "a closed socket frees its place",
        || async { Ws::try_connect(addr, "alice").await.ok() },
    )
    .await;
}

pub async fn browsers_authenticate_with_access_token(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    h.send("alice", &c, "c1", "hi").await.ok(201);
    // A WebSocket handshake without an Authorization header, as a browser makes it.
    let url = format!("ws://{addr}/api/v1/chat/ws?access_token=u:bob");
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake with access_token");
    let mut bob = crate::ws::Ws::from_stream(stream);
    assert_eq!(seq_of(&bob.subscribe(&c, Some(0)).await), [1]);
    // An EventSource request likewise.
    let req = axum::http::Request::builder()
        .uri(format!(
            "/api/v1/chat/events?follow={c}:0&access_token=u:bob"
        ))
        .header("accept", "text/event-stream")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(h.app.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Elsewhere the query parameter is no credential.
    h.call(
        None,
        Method::GET,
        "/api/v1/chat/conversations?access_token=u:bob",
        None,
    )
    .await
    .unauthorized();
    assert_eq!(Ws::refused(addr, None).await, 401);
}

pub async fn presence_online_away_offline(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    let ask = |who: &'static str, accounts: &str| {
        let path = format!("/api/v1/chat/presence?accounts={accounts}");
        let h = &h;
        async move { h.as_user(who, Method::GET, &path, None).await }
    };
    let status_of =
        |list: serde_json::Value| list["presence"][0]["status"].as_str().unwrap().to_owned();
    assert_eq!(status_of(ask("alice", "bob").await.ok(200)), "offline");
    let mut alice = Ws::connect(addr, "alice").await.with_presence();
    alice.subscribe(&c, None).await;
    let mut bob = Ws::connect(addr, "bob").await;
    bob.subscribe(&c, None).await;
    let seen = alice.expect("presence").await;
    assert_eq!(
        (seen["account"].as_str(), seen["status"].as_str()),
        (Some("bob"), Some("online"))
    );
    assert_eq!(status_of(ask("alice", "bob").await.ok(200)), "online");
    bob.send(json!({"type": "presence", "status": "away"}))
        .await;
    assert_eq!(alice.expect("presence").await["status"], "away");
    assert_eq!(status_of(ask("alice", "bob").await.ok(200)), "away");
    bob.send(json!({"type": "presence", "status": "offline"}))
        .await;
    assert_eq!(bob.expect("error").await["code"], "bad-frame");
    // Bob's only connection closes: offline, with the time he was last seen.
    drop(bob);
    assert_eq!(alice.expect("presence").await["status"], "offline");
    let list = ask("alice", "bob").await.ok(200);
    assert_eq!(list["presence"][0]["status"], "offline");
    assert!(list["presence"][0]["last_seen"].is_string(), "{list}");
    // Presence is for contacts: eve shares no conversation with bob.
    assert_eq!(ask("eve", "bob").await.ok(200)["presence"], json!([]));
    let many = (0..101)
        .map(|i| format!("a{i}"))
        .collect::<Vec<_>>()
        .join(",");
    ask("alice", &many).await.problem(400);
    ask("alice", "").await.problem(400);
}

pub async fn presence_expires_without_heartbeats(kind: Kind) {
    use praxis_chat::store::presence::{Presences, Status};
    let backend = kind.start().await;
    let presences = Presences::new(backend.platform.redis().cloned(), &backend.config.prefix);
    let ttl = std::time::Duration::from_millis(200);
    presences
        .beat("zed", Status::Online, ttl, 42)
        .await
        .unwrap();
    let now = presences.get(&["zed".to_owned()]).await.unwrap();
    assert_eq!(now[0].status, Status::Online);
    // No heartbeat follows (its process died): the entry lapses by itself.
    let later = praxis_testkit::eventually(crate::ws::DEADLINE, "presence expires", || async {
        let p = presences.get(&["zed".to_owned()]).await.unwrap();
        (p[0].status == Status::Offline).then_some(p)
    })
    .await;
    assert_eq!(
        later[0].last_seen,
        Some(42),
        "last seen outlives the presence"
    );
}

pub async fn retention_resets_clients_from_before_it(kind: Kind) {
    let settings = ChatSettings {
        retention: std::time::Duration::from_secs(3),
        ..crate::support::settings()
    };
    let h = Harness::with(kind, settings, &[]).await;
    let addr = serve(h.app.clone()).await;
    let c = h.direct("alice", "bob").await;
    for i in 1..=3 {
        h.send("alice", &c, &format!("c{i}"), "old").await.ok(201);
    }
    praxis_testkit::eventually(
        crate::ws::DEADLINE,
        "the retention deletes old messages",
        || async {
            let page = h.history("bob", &c, "after=0").await;
            page["messages"]
                .as_array()
                .unwrap()
                .is_empty()
                .then_some(())
        },
    )
    .await;
    h.send("alice", &c, "c4", "new").await.ok(201);
    // Bob held message 1: 2 and 3 are gone, so he is told to start again.
    let mut bob = Ws::connect(addr, "bob").await;
    bob.send(json!({"type": "subscribe", "conversation_id": c, "after": 1}))
        .await;
    let reset = bob.expect("reset").await;
    assert_eq!(reset["conversation_id"], c.as_str());
    assert_eq!(reset["last_seq"], 4);
    let first = reset["first_seq"].as_i64().unwrap();
    assert!(first >= 4, "{reset}");
    // Then what is kept, in order (message 4, unless the retention took it too meanwhile).
    let mut got = Vec::new();
    loop {
        let frame = bob.frame().await;
        match frame["type"].as_str() {
            Some("message") => got.push(frame["message"]["seq"].as_i64().unwrap()),
            Some("subscribed") => break,
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert_eq!(got, (first..=4).collect::<Vec<_>>());
    // A client that is not behind the retention gets no reset.
    let mut again = Ws::connect(addr, "bob").await;
    let kept = again.subscribe(&c, Some(4)).await;
    assert!(kept.is_empty());
}
