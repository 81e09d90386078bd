//! The cases, each on a fresh backend.

use std::collections::BTreeSet;

use axum::http::Method;
use praxis_chat::{ChatSettings, ChatSystem};
use praxis_testkit::{Kind, http};
use serde_json::json;

use crate::support::{Harness, seqs};

const CONVERSATIONS: &str = "/api/v1/chat/conversations";

pub async fn direct_conversation_is_one_per_pair(kind: Kind) {
    let h = Harness::start(kind).await;
    let body = json!({"kind": "direct", "with": "bob"});
    let first = h
        .as_user("alice", Method::POST, CONVERSATIONS, Some(body))
        .await
        .ok(201);
    assert_eq!(first["kind"], "direct");
    assert_eq!(first["peer"], "bob");
    let members: Vec<&str> = first["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["account"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 2);
    // Opened from the other side, it is the same conversation, and not a new one.
    let again = h
        .as_user(
            "bob",
            Method::POST,
            CONVERSATIONS,
            Some(json!({"kind": "direct", "with": "alice"})),
        )
        .await
        .ok(200);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["peer"], "alice");
    // Two at once from both sides still make one.
    let (a, b) = tokio::join!(h.direct("carol", "dave"), h.direct("dave", "carol"));
    assert_eq!(a, b);
    // Nobody joins or leaves a direct conversation.
    let id = first["id"].as_str().unwrap();
    h.as_user(
        "alice",
        Method::POST,
        &format!("{CONVERSATIONS}/{id}/members"),
        Some(json!({"account": "eve"})),
    )
    .await
    .problem(409);
    h.as_user(
        "alice",
        Method::DELETE,
        &format!("{CONVERSATIONS}/{id}/members/alice"),
        None,
    )
    .await
    .problem(409);
    // With oneself: 400 naming `with`.
    let r = h
        .as_user(
            "alice",
            Method::POST,
            CONVERSATIONS,
            Some(json!({"kind": "direct", "with": "alice"})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["with"]);
}

pub async fn groups_have_owners_and_members(kind: Kind) {
    let h = Harness::start(kind).await;
    let g = h.group("alice", &["bob", "bob", "alice"]).await;
    let path = format!("{CONVERSATIONS}/{g}");
    let view = h.as_user("bob", Method::GET, &path, None).await.ok(200);
    let roles: Vec<(String, String)> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["account"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".into(), "owner".into()),
            ("bob".into(), "member".into())
        ]
    );
    // A member may not add; the owner may, and may promote.
    h.as_user(
        "bob",
        Method::POST,
        &format!("{path}/members"),
        Some(json!({"account": "carol"})),
    )
    .await
    .problem(403);
    h.as_user(
        "alice",
        Method::POST,
        &format!("{path}/members"),
        Some(json!({"account": "carol"})),
    )
    .await
    .ok(201);
    h.as_user(
        "alice",
        Method::POST,
        &format!("{path}/members"),
        Some(json!({"account": "bob", "role": "owner"})),
    )
    .await
    .ok(200);
    // Bob, an owner now, removes carol; carol sees nothing of the group any more.
    h.as_user(
        "bob",
        Method::DELETE,
        &format!("{path}/members/carol"),
        None,
    )
    .await
    .ok(204);
    h.as_user("carol", Method::GET, &path, None)
        .await
        .problem(404);
    // When the last owner leaves, the longest-standing member becomes owner.
    h.as_user(
        "alice",
        Method::POST,
        &format!("{path}/members"),
        Some(json!({"account": "dave"})),
    )
    .await
    .ok(201);
    h.as_user(
        "alice",
        Method::DELETE,
        &format!("{path}/members/alice"),
        None,
    )
    .await
    .ok(204);
    h.as_user("bob", Method::DELETE, &format!("{path}/members/bob"), None)
        .await
        .ok(204);
    let view = h.as_user("dave", Method::GET, &path, None).await.ok(200);
    assert_eq!(view["members"][0]["account"], "dave");
    assert_eq!(view["members"][0]["role"], "owner");
    // A group is capped at max_members.
    let small = Harness::with(
        kind,
        ChatSettings {
            max_members: 3,
            ..crate::support::settings()
        },
        &[],
    )
    .await;
    let r = small
        .as_user(
            "a",
            Method::POST,
            CONVERSATIONS,
            Some(json!({"kind": "group", "title": "t", "members": ["b", "c", "d"]})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["members"]);
    let g = small.group("a", &["b", "c"]).await;
    small
        .as_user(
            "a",
            Method::POST,
            &format!("{CONVERSATIONS}/{g}/members"),
            Some(json!({"account": "d"})),
        )
        .await
        .problem(409);
}

pub async fn sequences_are_gapless_under_concurrent_senders(kind: Kind) {
    let h = Harness::start(kind).await;
    let senders = ["s0", "s1", "s2", "s3", "s4", "s5"];
    let g = h.group("s0", &senders[1..]).await;
    let other = h.group("s0", &senders[1..]).await;
    const EACH: usize = 15;
    let sends = senders
        .iter()
        .flat_map(|s| (0..EACH).map(move |i| (*s, i)))
        .map(|(s, i)| {
            let (h, g, other) = (&h, &g, &other);
            async move {
                // Interleave a second conversation: its sequence is its own.
                let target = if i % 5 == 4 { other } else { g };
                let r = h
                    .send(s, target, &format!("{s}-{i}"), &format!("{s} says {i}"))
                    .await
                    .ok(201);
                (target == g, r["seq"].as_i64().unwrap())
            }
        });
    let results = futures::future::join_all(sends).await;
    let in_group: Vec<i64> = results
        .iter()
        .filter(|(g, _)| *g)
        .map(|(_, s)| *s)
        .collect();
    let unique: BTreeSet<i64> = in_group.iter().copied().collect();
    let n = in_group.len() as i64;
    assert_eq!(
        unique,
        (1..=n).collect(),
        "every sequence once, none skipped"
    );
    let page = h.history("s0", &g, "after=0&limit=200").await;
    assert_eq!(seqs(&page), (1..=n).collect::<Vec<_>>());
    assert_eq!(page["last_seq"], n);
    // Each sender's own messages are in the order it sent them (one at a time per sender).
    let other_page = h.history("s1", &other, "after=0&limit=200").await;
    assert_eq!(
        seqs(&other_page),
        (1..=(senders.len() * EACH) as i64 - n).collect::<Vec<_>>()
    );
}

pub async fn resend_with_the_same_client_id_is_the_same_message(kind: Kind) {
    let h = Harness::start(kind).await;
    let c = h.direct("alice", "bob").await;
    let first = h.send("alice", &c, "m-1", "hello").await.ok(201);
    let again = h.send("alice", &c, "m-1", "hello").await.ok(200);
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["created_at"], first["created_at"]);
    // Concurrent resends store one copy.
    let (a, b) = tokio::join!(
        h.send("alice", &c, "m-2", "twice"),
        h.send("alice", &c, "m-2", "twice")
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 201]);
    assert_eq!(a.json()["seq"], b.json()["seq"]);
    // The same client id from another sender is another message.
    let bobs = h.send("bob", &c, "m-1", "hello").await.ok(201);
    assert_eq!(bobs["seq"], 3);
    // Reused with another body: 409, nothing stored.
    let r = h
        .send("alice", &c, "m-1", "something else")
        .await
        .problem(409);
    assert!(
        r["detail"].as_str().unwrap().contains("client_id m-1"),
        "{r}"
    );
    let page = h.history("alice", &c, "").await;
    assert_eq!(
        seqs(&page),
        [1, 2, 3],
        "no gap after the resends and the conflict"
    );
}

pub async fn history_pages_by_sequence(kind: Kind) {
    let h = Harness::start(kind).await;
    let c = h.direct("alice", "bob").await;
    for i in 1..=7 {
        h.send("alice", &c, &format!("c{i}"), &format!("m{i}"))
            .await
            .ok(201);
    }
    assert_eq!(seqs(&h.history("bob", &c, "limit=3").await), [5, 6, 7]);
    assert_eq!(
        seqs(&h.history("bob", &c, "before=5&limit=3").await),
        [2, 3, 4]
    );
    assert_eq!(seqs(&h.history("bob", &c, "before=2").await), [1]);
    assert_eq!(seqs(&h.history("bob", &c, "after=4&limit=2").await), [5, 6]);
    // Both: the messages between them.
    assert_eq!(
        seqs(&h.history("bob", &c, "after=2&before=5").await),
        [3, 4]
    );
    assert_eq!(
        seqs(&h.history("bob", &c, "after=5&before=3").await),
        Vec::<i64>::new()
    );
    assert_eq!(
        seqs(&h.history("bob", &c, "after=7").await),
        Vec::<i64>::new()
    );
    let page = h.history("bob", &c, "after=6").await;
    assert_eq!(page["messages"][0]["body"], "m7");
    assert_eq!(page["messages"][0]["sender"], "alice");
    assert_eq!(page["messages"][0]["client_id"], "c7");
    assert_eq!(page["last_seq"], 7);
}

pub async fn edits_and_tombstones(kind: Kind) {
    let h = Harness::start(kind).await;
    let g = h.group("owner", &["ann", "ben"]).await;
    h.send("ann", &g, "a1", "first").await.ok(201);
    h.send("ben", &g, "b1", "second").await.ok(201);
    let msg = |seq: i64| format!("{CONVERSATIONS}/{g}/messages/{seq}");
    let edited = h
        .as_user(
            "ann",
            Method::PATCH,
            &msg(1),
            Some(json!({"body": "first!"})),
        )
        .await
        .ok(200);
    assert_eq!(edited["body"], "first!");
    assert!(edited["edited_at"].is_string());
    h.as_user(
        "ben",
        Method::PATCH,
        &msg(1),
        Some(json!({"body": "mine now"})),
    )
    .await
    .problem(403);
    h.as_user("ben", Method::DELETE, &msg(1), None)
        .await
        .problem(403);
    // The sender deletes their own; an owner deletes anyone's.
    let gone = h
        .as_user("ann", Method::DELETE, &msg(1), None)
        .await
        .ok(200);
    assert_eq!(gone["deleted"], true);
    assert!(gone.get("body").is_none(), "{gone}");
    h.as_user("owner", Method::DELETE, &msg(2), None)
        .await
        .ok(200);
    h.as_user("ann", Method::PATCH, &msg(1), Some(json!({"body": "back"})))
        .await
        .problem(409);
    h.as_user("ann", Method::DELETE, &msg(9), None)
        .await
        .problem(404);
    // Tombstones keep their place; the next message follows them.
    h.send("ann", &g, "a2", "third").await.ok(201);
    let page = h.history("ben", &g, "").await;
    assert_eq!(seqs(&page), [1, 2, 3]);
    assert_eq!(page["messages"][0]["deleted"], true);
    assert_eq!(page["messages"][2]["body"], "third");
}

pub async fn read_markers_and_unread_counts(kind: Kind) {
    let h = Harness::start(kind).await;
    let c = h.direct("alice", "bob").await;
    for i in 1..=4 {
        h.send("alice", &c, &format!("c{i}"), "hi").await.ok(201);
    }
    let unread = |page: serde_json::Value| page["conversations"][0]["unread"].as_i64().unwrap();
    assert_eq!(
        unread(
            h.as_user("bob", Method::GET, CONVERSATIONS, None)
                .await
                .ok(200)
        ),
        4
    );
    assert_eq!(
        unread(
            h.as_user("alice", Method::GET, CONVERSATIONS, None)
                .await
                .ok(200)
        ),
        0,
        "own messages are read"
    );
    let read = format!("{CONVERSATIONS}/{c}/read");
    let r = h
        .as_user("bob", Method::POST, &read, Some(json!({"seq": 3})))
        .await
        .ok(200);
    assert_eq!(r["read_seq"], 3);
    // Never backwards, never past the newest message.
    assert_eq!(
        h.as_user("bob", Method::POST, &read, Some(json!({"seq": 1})))
            .await
            .ok(200)["read_seq"],
        3
    );
    assert_eq!(
        h.as_user("bob", Method::POST, &read, Some(json!({"seq": 99})))
            .await
            .ok(200)["read_seq"],
        4
    );
    let list = h
        .as_user("bob", Method::GET, CONVERSATIONS, None)
        .await
        .ok(200);
    assert_eq!(unread(list), 0);
    // Each member's marker is visible to the others.
    let view = h
        .as_user("alice", Method::GET, &format!("{CONVERSATIONS}/{c}"), None)
        .await
        .ok(200);
    let bob = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["account"] == "bob")
        .unwrap();
    assert_eq!(bob["read_seq"], 4);
}

pub async fn list_is_newest_first_and_pages(kind: Kind) {
    let h = Harness::start(kind).await;
    let mut ids = Vec::new();
    for peer in ["p1", "p2", "p3", "p4", "p5"] {
        ids.push(h.direct("me", peer).await);
    }
    // Activity moves a conversation to the top. Times are in milliseconds: wait for the clock
    // to pass the last creation, so the message is strictly newer.
    let created = unix_ms();
    while unix_ms() <= created {
        tokio::task::yield_now().await;
    }
    h.send("p2", &ids[1], "x", "ping").await.ok(201);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{CONVERSATIONS}?limit=2&cursor={c}"),
            None => format!("{CONVERSATIONS}?limit=2"),
        };
        let page = h.as_user("me", Method::GET, &q, None).await.ok(200);
        for c in page["conversations"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "every conversation once: {seen:?}");
    assert_eq!(seen[0], ids[1], "the one with the newest message first");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 5);
    let top = h
        .as_user("me", Method::GET, &format!("{CONVERSATIONS}?limit=1"), None)
        .await
        .ok(200);
    assert_eq!(top["conversations"][0]["last_message"]["body"], "ping");
    assert_eq!(top["conversations"][0]["peer"], "p2");
}

pub async fn non_members_see_nothing(kind: Kind) {
    let h = Harness::start(kind).await;
    let c = h.direct("alice", "bob").await;
    h.send("alice", &c, "c1", "private").await.ok(201);
    let base = format!("{CONVERSATIONS}/{c}");
    for (method, path, body) in [
        (Method::GET, base.clone(), None),
        (Method::GET, format!("{base}/messages"), None),
        (
            Method::POST,
            format!("{base}/messages"),
            Some(json!({"client_id": "x", "body": "let me in"})),
        ),
        (
            Method::PATCH,
            format!("{base}/messages/1"),
            Some(json!({"body": "mine"})),
        ),
        (Method::DELETE, format!("{base}/messages/1"), None),
        (
            Method::POST,
            format!("{base}/read"),
            Some(json!({"seq": 1})),
        ),
        (
            Method::POST,
            format!("{base}/members"),
            Some(json!({"account": "eve"})),
        ),
    ] {
        let r = h.as_user("eve", method.clone(), &path, body).await;
        let p = r.problem(404);
        assert!(
            p["detail"].as_str().unwrap().contains("among yours"),
            "{method} {path}: {p}"
        );
    }
    assert_eq!(
        h.as_user("eve", Method::GET, CONVERSATIONS, None)
            .await
            .ok(200)["conversations"],
        json!([])
    );
    // The same answer as for a conversation that does not exist.
    h.as_user(
        "eve",
        Method::GET,
        &format!("{CONVERSATIONS}/no-such-id"),
        None,
    )
    .await
    .problem(404);
    // Anonymous callers get 401.
    h.call(None, Method::GET, CONVERSATIONS, None)
        .await
        .unauthorized();
    h.call(
        None,
        Method::POST,
        &format!("{base}/messages"),
        Some(json!({"client_id": "x", "body": "y"})),
    )
    .await
    .unauthorized();
    // Nothing eve tried was stored.
    assert_eq!(seqs(&h.history("alice", &c, "").await), [1]);
}

pub async fn bad_input_is_a_named_problem(kind: Kind) {
    let h = Harness::with(
        kind,
        ChatSettings {
            max_message_bytes: 16,
            page_max: 50,
            ..crate::support::settings()
        },
        &[],
    )
    .await;
    let c = h.direct("alice", "bob").await;
    let send = format!("{CONVERSATIONS}/{c}/messages");
    let cases = [
        (json!({"client_id": "", "body": "x"}), vec!["client_id"]),
        (
            json!({"client_id": "has space", "body": "x"}),
            vec!["client_id"],
        ),
        (json!({"client_id": "ok", "body": "   "}), vec!["body"]),
        (
            json!({"client_id": "ok", "body": "seventeen bytes!!"}),
            vec!["body"],
        ),
        (
            json!({"client_id": "", "body": ""}),
            vec!["client_id", "body"],
        ),
    ];
    for (body, fields) in cases {
        let r = h
            .as_user("alice", Method::POST, &send, Some(body.clone()))
            .await;
        r.problem(400);
        assert_eq!(r.fields(), fields, "{body}");
    }
    // Unknown fields, wrong types and missing fields are 400 too, never 500.
    for body in [
        json!({"client_id": "a", "body": "x", "extra": 1}),
        json!({"client_id": 5, "body": "x"}),
        json!({"body": "x"}),
    ] {
        h.as_user("alice", Method::POST, &send, Some(body))
            .await
            .problem(400);
    }
    for body in [
        json!({"kind": "channel"}),
        json!({"kind": "direct"}),
        json!({"kind": "group", "title": ""}),
        json!({"kind": "group", "title": "t", "members": ["a b"]}),
        json!({"kind": "direct", "with": "x".repeat(200)}),
    ] {
        h.as_user("alice", Method::POST, CONVERSATIONS, Some(body.clone()))
            .await
            .problem(400);
    }
    let r = h
        .as_user(
            "alice",
            Method::POST,
            CONVERSATIONS,
            Some(json!({"kind": "group", "title": "t", "members": ["ok", "a b"]})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["members[1]"]);
    for query in [
        "limit=0", "limit=51", "after=-1", "before=0", "after=x", "nope=1",
    ] {
        let r = h
            .as_user("alice", Method::GET, &format!("{send}?{query}"), None)
            .await;
        r.problem(400);
    }
    let r = h
        .as_user("alice", Method::GET, &format!("{send}?limit=51"), None)
        .await;
    assert_eq!(r.fields(), ["limit"]);
    h.as_user(
        "alice",
        Method::GET,
        &format!("{CONVERSATIONS}?cursor=garbage"),
        None,
    )
    .await
    .problem(400);
    h.as_user(
        "alice",
        Method::PATCH,
        &format!("{send}/abc"),
        Some(json!({"body": "x"})),
    )
    .await
    .problem(400);
    h.as_user(
        "alice",
        Method::POST,
        &format!("{CONVERSATIONS}/{c}/read"),
        Some(json!({"seq": -1})),
    )
    .await
    .problem(400);
    // Not JSON at all.
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(&send)
        .header("authorization", "Bearer u:alice")
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    http::send(&h.app, req).await.problem(400);
    assert_eq!(
        seqs(&h.history("alice", &c, "").await),
        Vec::<i64>::new(),
        "nothing stored"
    );
}

pub async fn api_keys_need_chat_scopes(kind: Kind) {
    let reader = Harness::with(kind, crate::support::settings(), &["chat:read"]).await;
    let c = reader.direct("alice", "bob").await;
    reader.send("alice", &c, "c1", "hi").await.ok(201);
    // An API key of alice's with chat:read reads, but does not send.
    let page = reader
        .call(
            Some("key:alice"),
            Method::GET,
            &format!("{CONVERSATIONS}/{c}/messages"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(seqs(&page), [1]);
    reader
        .call(
            Some("key:alice"),
            Method::POST,
            &format!("{CONVERSATIONS}/{c}/messages"),
            Some(json!({"client_id": "k", "body": "x"})),
        )
        .await
        .problem(403);
    let writer = Harness::on(
        reader.backend.another_process().await,
        crate::support::settings(),
        &["chat:write"],
    )
    .await;
    writer
        .call(
            Some("key:alice"),
            Method::POST,
            &format!("{CONVERSATIONS}/{c}/messages"),
            Some(json!({"client_id": "k", "body": "x"})),
        )
        .await
        .ok(201);
    let none = Harness::on(
        reader.backend.another_process().await,
        crate::support::settings(),
        &["links:read"],
    )
    .await;
    none.call(Some("key:alice"), Method::GET, CONVERSATIONS, None)
        .await
        .problem(403);
}

pub async fn settings_are_read_from_the_section(kind: Kind) {
    static CHAT: ChatSystem = ChatSystem;
    let backend = kind.start().await;
    let started = backend
        .start_plugin(
            &CHAT,
            &[("max_message_bytes", Some("4")), ("page_max", Some("2"))],
        )
        .await
        .unwrap();
    let auth = praxis_testkit::TestAuthenticator::new()
        .made_up_users(&[])
        .settings("k");
    let app = http::app(vec![started.service], &backend.platform, auth);
    let h = Harness { backend, app };
    let c = h.direct("alice", "bob").await;
    h.send("alice", &c, "a", "four").await.ok(201);
    let r = h.send("alice", &c, "b", "fives").await;
    r.problem(400);
    assert_eq!(r.fields(), ["body"]);
    let r = h
        .as_user(
            "alice",
            Method::GET,
            &format!("{CONVERSATIONS}/{c}/messages?limit=3"),
            None,
        )
        .await;
    r.problem(400);
    // A bad value names the key.
    let Err(err) = h
        .backend
        .start_plugin(&CHAT, &[("max_members", Some("1"))])
        .await
    else {
        panic!("max_members = 1 is refused");
    };
    assert!(err.to_string().contains("max_members"), "{err}");
}

pub async fn two_processes_share_one_gapless_sequence() {
    let (a, b) = praxis_testkit::scaled_pair().await;
    let a = Harness::on(a, crate::support::settings(), &[]).await;
    let b = Harness::on(b, crate::support::settings(), &[]).await;
    let g = a.group("u0", &["u1", "u2", "u3"]).await;
    let sends = (0..40).map(|i| {
        let (h, user) = if i % 2 == 0 {
            (&a, format!("u{}", i % 4))
        } else {
            (&b, format!("u{}", i % 4))
        };
        let g = &g;
        async move {
            h.send(&user, g, &format!("m{i}"), "hi").await.ok(201)["seq"]
                .as_i64()
                .unwrap()
        }
    });
    let got: BTreeSet<i64> = futures::future::join_all(sends).await.into_iter().collect();
    assert_eq!(got, (1..=40).collect());
    assert_eq!(
        seqs(&b.history("u1", &g, "after=0&limit=100").await),
        (1..=40).collect::<Vec<_>>()
    );
    // A resend to the other process is still the same message.
    let first = a.send("u1", &g, "m1", "hi").await.ok(200);
    let again = b.send("u1", &g, "m1", "hi").await.ok(200);
    assert_eq!(first["seq"], again["seq"]);
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}
