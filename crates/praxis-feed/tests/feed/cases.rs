//! The cases, each run on every backend.

use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use serde_json::json;
use std::collections::HashSet;
use tower::ServiceExt;

use praxis_feed::FeedSettings;
use praxis_feed::store::timeline::TimelineState;

use crate::support::{DEADLINE, Harness, KEY, Kind, eventually, ids, settings};

/// A unique user name per test run (scaled runs share Redis).
fn user(name: &str) -> String {
    format!("{name}-{}", &uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{t:x}{}", N.fetch_add(1, Ordering::Relaxed))
}

fn link(r: &crate::support::Resp) -> String {
    r.header("link").unwrap_or_default().to_owned()
}

pub async fn home_is_newest_first_and_pages_with_links(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a, b) = (user("reader"), user("alice"), user("bob"));
    h.follow(&r, &a).await;
    h.follow(&r, &b).await;
    h.activate(&r).await;
    let mut posted = Vec::new();
    for i in 0..5 {
        posted.push(h.post(&a, &format!("a{i}")).await);
        posted.push(h.post(&b, &format!("b{i}")).await);
    }
    posted.push(h.post(&r, "mine").await);
    h.fanned_out().await;
    let newest_first: Vec<i64> = posted.iter().rev().copied().collect();

    let (all, resp) = h.home(&r, "").await;
    assert_eq!(all, newest_first, "ordering");
    assert_eq!(resp.header("x-feed-source"), Some("store"));

    // Following `next` links, 4 at a time.
    let (p1, resp) = h.home(&r, "limit=4").await;
    assert_eq!(p1, newest_first[..4]);
    let l = link(&resp);
    assert!(
        l.contains(&format!("max_id={}", p1[3])) && l.contains("rel=\"next\""),
        "{l}"
    );
    assert!(
        l.contains(&format!("min_id={}", p1[0])) && l.contains("rel=\"prev\""),
        "{l}"
    );
    let (p2, _) = h.home(&r, &format!("limit=4&max_id={}", p1[3])).await;
    assert_eq!(p2, newest_first[4..8]);
    let (p3, _) = h.home(&r, &format!("limit=4&max_id={}", p2[3])).await;
    assert_eq!(p3, newest_first[8..]);
    let (p4, resp) = h
        .home(&r, &format!("limit=4&max_id={}", p3[p3.len() - 1]))
        .await;
    assert!(p4.is_empty());
    assert!(resp.header("link").is_none());

    // min_id: the page right after an id (listed newest first); since_id: the newest above it.
    let oldest = newest_first[newest_first.len() - 1];
    let (after, _) = h.home(&r, &format!("limit=3&min_id={oldest}")).await;
    let mut expect: Vec<i64> =
        newest_first[newest_first.len() - 4..newest_first.len() - 1].to_vec();
    assert_eq!(after, expect);
    let (since, _) = h.home(&r, &format!("limit=3&since_id={oldest}")).await;
    expect = newest_first[..3].to_vec();
    assert_eq!(since, expect);

    // The user timeline pages the same way.
    let resp = h
        .as_user(
            &r,
            Method::GET,
            &format!("/api/v1/feed/users/{a}/posts?limit=2"),
            None,
        )
        .await;
    let a_posts: Vec<i64> = posted[..10]
        .iter()
        .step_by(2)
        .rev()
        .copied()
        .take(2)
        .collect();
    assert_eq!(ids(&resp.ok(200)), a_posts);
    assert!(link(&resp).contains(&format!(
        "/api/v1/feed/users/{a}/posts?max_id={}",
        a_posts[1]
    )));
}

pub async fn paging_across_concurrent_posts_has_no_gaps_or_duplicates(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a, b) = (user("reader"), user("alice"), user("bob"));
    h.follow(&r, &a).await;
    h.follow(&r, &b).await;
    h.activate(&r).await;
    let mut before = Vec::new();
    for i in 0..30 {
        before.push(
            h.post(if i % 2 == 0 { &a } else { &b }, &format!("p{i}"))
                .await,
        );
    }
    h.fanned_out().await;

    let app = h.app.clone();
    let (a2, b2) = (a.clone(), b.clone());
    let writer = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 0..30 {
            let who = if i % 2 == 0 { &a2 } else { &b2 };
            let req = Request::builder()
                .method(Method::POST)
                .uri("/api/v1/feed/posts")
                .header(header::AUTHORIZATION, format!("Bearer u:{who}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"text": format!("live {i}")}).to_string()))
                .expect("request");
            let r = praxis_testkit::http::send(&app, req).await;
            let body = r.ok(201);
            ids.push(body["id"].as_str().expect("id").parse::<i64>().expect("id"));
            tokio::task::yield_now().await;
        }
        ids
    });

    // Page down (older) while the writer posts.
    let (first, _) = h.home(&r, "limit=7").await;
    let top = first[0];
    let mut seen = first.clone();
    let mut last = *first.last().expect("a first page");
    loop {
        let (page, _) = h.home(&r, &format!("limit=7&max_id={last}")).await;
        let Some(l) = page.last() else { break };
        last = *l;
        seen.extend(page);
    }
    let during = writer.await.expect("writer");
    h.fanned_out().await;
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first: {seen:?}"
    );
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    for id in &before {
        assert!(
            unique.contains(id),
            "post {id} skipped paging down: {seen:?}"
        );
    }

    // Page up (newer) from the top of the first page: exactly the posts made since.
    let mut newer = Vec::new();
    let mut min = top;
    loop {
        let (page, _) = h.home(&r, &format!("limit=7&min_id={min}")).await;
        let Some(f) = page.first() else { break };
        assert!(page.windows(2).all(|w| w[0] > w[1]), "{page:?}");
        min = *f;
        newer.extend(page.into_iter().rev());
    }
    let all: HashSet<i64> = before.iter().chain(during.iter()).copied().collect();
    let mut got: Vec<i64> = seen.iter().chain(newer.iter()).copied().collect();
    let n = got.len();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), n, "a post shown twice across pages");
    assert_eq!(
        got.into_iter().collect::<HashSet<_>>(),
        all,
        "a post missing across pages"
    );
}

pub async fn celebrity_posts_are_merged_not_pushed(kind: Kind) {
    let h = Harness::start(
        kind,
        FeedSettings {
            celebrity_threshold: 2,
            ..settings()
        },
    )
    .await;
    let (star, f1, f2, n) = (user("star"), user("fan1"), user("fan2"), user("normal"));
    h.follow(&f1, &star).await;
    h.follow(&f2, &star).await;
    h.follow(&f1, &n).await;
    h.activate(&f1).await;
    h.activate(&f2).await;
    let n1 = h.post(&n, "n1").await;
    let s1 = h.post(&star, "s1").await;
    let n2 = h.post(&n, "n2").await;
    let s2 = h.post(&star, "s2").await;
    h.fanned_out().await;
    let stored = h.stored(&f1).await;
    assert_eq!(
        stored,
        vec![n2, n1],
        "no timeline entries for a celebrity's posts"
    );
    assert!(h.stored(&f2).await.is_empty());
    let (home, resp) = h.home(&f1, "").await;
    assert_eq!(home, vec![s2, n2, s1, n1]);
    assert_eq!(resp.header("x-feed-source"), Some("store"));
    assert_eq!(h.home(&f2, "").await.0, vec![s2, s1]);
    // The merge pages like the rest.
    let (p1, _) = h.home(&f1, "limit=1").await;
    let (p2, _) = h.home(&f1, &format!("limit=1&max_id={}", p1[0])).await;
    let (p3, _) = h.home(&f1, &format!("limit=2&max_id={}", p2[0])).await;
    assert_eq!([p1, p2, p3].concat(), vec![s2, n2, s1, n1]);
    let post = h
        .as_user(&f1, Method::GET, &format!("/api/v1/feed/posts/{s1}"), None)
        .await
        .ok(200);
    assert_eq!(post["fanout"], "pull");
}

pub async fn threshold_switch_loses_no_post(kind: Kind) {
    let h = Harness::start(
        kind,
        FeedSettings {
            celebrity_threshold: 2,
            ..settings()
        },
    )
    .await;
    let (c, f1, f2) = (user("author"), user("fan1"), user("fan2"));
    h.follow(&f1, &c).await;
    h.activate(&f1).await;
    let a = h.post(&c, "push before").await;
    h.follow(&f2, &c).await; // crosses the threshold upwards
    h.activate(&f2).await;
    let b = h.post(&c, "pull").await;
    h.as_user(
        &f2,
        Method::DELETE,
        &format!("/api/v1/feed/follows/{c}"),
        None,
    )
    .await
    .ok(200); // and back down
    let d = h.post(&c, "push after").await;
    h.fanned_out().await;
    assert_eq!(h.stored(&f1).await, vec![d, a]);
    for limit in [1, 2, 20] {
        let mut got = Vec::new();
        let mut q = format!("limit={limit}");
        loop {
            let (page, _) = h.home(&f1, &q).await;
            let Some(last) = page.last() else { break };
            q = format!("limit={limit}&max_id={last}");
            got.extend(page);
        }
        assert_eq!(got, vec![d, b, a], "limit {limit}");
    }
    // f2 no longer follows the author: none of the posts shows.
    assert_eq!(h.home(&f2, "").await.0, Vec::<i64>::new());
}

pub async fn follow_backfills_the_timeline(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a) = (user("reader"), user("alice"));
    let posts = [
        h.post(&a, "1").await,
        h.post(&a, "2").await,
        h.post(&a, "3").await,
    ];
    h.fanned_out().await;
    h.activate(&r).await;
    assert!(h.stored(&r).await.is_empty());
    h.follow(&r, &a).await;
    assert_eq!(h.stored(&r).await, vec![posts[2], posts[1], posts[0]]);
    let (home, resp) = h.home(&r, "").await;
    assert_eq!(home, vec![posts[2], posts[1], posts[0]]);
    assert_eq!(resp.header("x-feed-source"), Some("store"));
}

pub async fn unfollow_block_mute_delete_take_effect(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a, b, c, d) = (user("r"), user("a"), user("b"), user("c"), user("d"));
    for x in [&a, &b, &c, &d] {
        h.follow(&r, x).await;
    }
    h.follow(&b, &r).await;
    h.activate(&r).await;
    let pa = h.post(&a, "a").await;
    let pb = h.post(&b, "b").await;
    let pc = h.post(&c, "c").await;
    let pd = h.post(&d, "d").await;
    let pd2 = h.post(&d, "d2").await;
    let mine = h.post(&r, "mine").await;
    h.fanned_out().await;
    assert_eq!(h.home(&r, "").await.0, vec![mine, pd2, pd, pc, pb, pa]);

    h.as_user(
        &r,
        Method::DELETE,
        &format!("/api/v1/feed/follows/{a}"),
        None,
    )
    .await
    .ok(200);
    h.as_user(&r, Method::POST, &format!("/api/v1/feed/blocks/{b}"), None)
        .await
        .ok(200);
    h.as_user(&r, Method::POST, &format!("/api/v1/feed/mutes/{c}"), None)
        .await
        .ok(200);
    h.as_user(
        &d,
        Method::DELETE,
        &format!("/api/v1/feed/posts/{pd}"),
        None,
    )
    .await
    .ok(204);
    // Someone else cannot delete d's post.
    h.as_user(
        &r,
        Method::DELETE,
        &format!("/api/v1/feed/posts/{pd2}"),
        None,
    )
    .await
    .problem(403);
    let (home, resp) = h.home(&r, "").await;
    assert_eq!(home, vec![mine, pd2]);
    assert_eq!(resp.header("x-feed-source"), Some("store"));
    // The same on the database path.
    h.feed.timelines().clear().await.expect("clear");
    let (home, resp) = h.home(&r, "").await;
    assert_eq!(home, vec![mine, pd2]);
    assert_eq!(resp.header("x-feed-source"), Some("database"));
    h.as_user(&r, Method::GET, &format!("/api/v1/feed/posts/{pd}"), None)
        .await
        .problem(404);
    // The block ended b's follow of r and hides each from the other.
    assert!(h.home(&b, "").await.0.iter().all(|id| *id != mine));
    h.as_user(&b, Method::GET, &format!("/api/v1/feed/posts/{mine}"), None)
        .await
        .problem(404);
    let r_as_b = h
        .as_user(
            &b,
            Method::GET,
            &format!("/api/v1/feed/users/{r}/posts"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(ids(&r_as_b), Vec::<i64>::new());
    h.as_user(&b, Method::POST, &format!("/api/v1/feed/follows/{r}"), None)
        .await
        .problem(403);
    // Unmute: c's post is back.
    h.as_user(&r, Method::DELETE, &format!("/api/v1/feed/mutes/{c}"), None)
        .await
        .ok(200);
    assert_eq!(h.home(&r, "").await.0, vec![mine, pd2, pc]);
}

pub async fn flushed_timelines_answer_from_the_database_and_rebuild(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a) = (user("reader"), user("alice"));
    h.follow(&r, &a).await;
    h.activate(&r).await;
    let mut posts = Vec::new();
    for i in 0..5 {
        posts.push(h.post(&a, &format!("{i}")).await);
    }
    h.fanned_out().await;
    posts.reverse();
    assert_eq!(h.stored(&r).await, posts);

    // "Redis flushed" (scaled: every key of the feed deleted) / the memory store lost.
    h.flush_timelines().await;
    assert_eq!(
        h.feed.timelines().state(&r).await.expect("state"),
        TimelineState::Missing
    );
    let (home, resp) = h.home(&r, "").await;
    assert_eq!(home, posts, "answered at once from the database");
    assert_eq!(resp.header("x-feed-source"), Some("database"));
    let (page, _) = h.home(&r, &format!("limit=2&max_id={}", posts[1])).await;
    assert_eq!(page, posts[2..4]);

    let feed = h.feed.clone();
    let who = r.clone();
    eventually(DEADLINE, "timeline rebuilt", || {
        let feed = feed.clone();
        let who = who.clone();
        async move { (feed.timelines().state(&who).await.ok()? == TimelineState::Built).then_some(()) }
    })
    .await;
    assert_eq!(h.stored(&r).await, posts);
    let (home, resp) = h.home(&r, "").await;
    assert_eq!(home, posts);
    assert_eq!(resp.header("x-feed-source"), Some("store"));
    // New posts reach the rebuilt timeline.
    let p = h.post(&a, "after").await;
    h.fanned_out().await;
    assert_eq!(h.stored(&r).await[0], p);
}

pub async fn inactive_users_get_no_fanout_but_see_posts(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (active, idle, a) = (user("active"), user("idle"), user("alice"));
    h.follow(&active, &a).await;
    h.follow(&idle, &a).await;
    h.activate(&active).await;
    let p = h.post(&a, "hello").await;
    h.fanned_out().await;
    assert_eq!(h.stored(&active).await, vec![p]);
    assert_eq!(
        h.feed.timelines().state(&idle).await.expect("state"),
        TimelineState::Missing
    );
    assert!(
        h.stored(&idle).await.is_empty(),
        "no fan-out to an inactive user"
    );
    let (home, resp) = h.home(&idle, "").await;
    assert_eq!(home, vec![p]);
    assert_eq!(resp.header("x-feed-source"), Some("database"));
    let feed = h.feed.clone();
    let who = idle.clone();
    eventually(DEADLINE, "idle user's timeline rebuilt", || {
        let feed = feed.clone();
        let who = who.clone();
        async move { (feed.timelines().state(&who).await.ok()? == TimelineState::Built).then_some(()) }
    })
    .await;
    assert_eq!(h.stored(&idle).await, vec![p]);
}

pub async fn stream_receives_followee_posts(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a, stranger) = (user("reader"), user("alice"), user("stranger"));
    h.follow(&r, &a).await;
    let req = Request::builder()
        .uri("/api/v1/feed/timelines/home/stream")
        .header(header::AUTHORIZATION, format!("Bearer u:{r}"))
        .body(Body::empty())
        .expect("request");
    let res = h.app.clone().oneshot(req).await.expect("stream");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut body = res.into_body();
    h.post(&stranger, "not for you").await;
    let p = h.post(&a, "for you").await;
    let text = tokio::time::timeout(DEADLINE, async {
        let mut text = String::new();
        while !text.contains("event: post") || !text.contains("\n\n") {
            let frame = body.frame().await.expect("open").expect("frame");
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        text
    })
    .await
    .expect("a post event");
    assert!(text.contains(&format!("id: {p}")), "{text}");
    assert!(
        text.contains("for you") && !text.contains("not for you"),
        "{text}"
    );
}

pub async fn bad_input_is_a_named_problem(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let u = user("u");
    let field = |r: &crate::support::Resp| r.fields();
    for q in [
        "limit=0",
        "limit=41",
        "limit=4294967296",
        "max_id=abc",
        "since_id=-1",
    ] {
        let r = h
            .as_user(
                &u,
                Method::GET,
                &format!("/api/v1/feed/timelines/home?{q}"),
                None,
            )
            .await;
        r.problem(400);
        let name = q.split('=').next().expect("name");
        assert_eq!(field(&r), vec![name.to_owned()], "{q}");
    }
    for (body, name) in [
        (json!({"text": ""}), "text"),
        (json!({"text": "   "}), "text"),
        (json!({"text": "x".repeat(501)}), "text"),
        (json!({}), "text"),
        (json!({"text": "ok", "reply_to": "nope"}), "reply_to"),
        (json!({"text": "ok", "reply_to": "0123"}), "reply_to"),
        (
            json!({"text": "ok", "media": ["a", "b", "c", "d", "e"]}),
            "media",
        ),
    ] {
        let r = h
            .as_user(&u, Method::POST, "/api/v1/feed/posts", Some(body.clone()))
            .await;
        r.problem(400);
        assert!(
            field(&r).contains(&name.to_owned()),
            "{body}: {:?}",
            field(&r)
        );
    }
    // A reply to a post that does not exist: 404 naming reply_to.
    let r = h
        .as_user(
            &u,
            Method::POST,
            "/api/v1/feed/posts",
            Some(json!({"text": "ok", "reply_to": "999999"})),
        )
        .await;
    r.problem(404);
    let ok = h.post(&u, &"é".repeat(500)).await;
    assert!(ok > 0);
    h.as_user(&u, Method::GET, "/api/v1/feed/posts/999999", None)
        .await
        .problem(404);
    h.as_user(&u, Method::GET, "/api/v1/feed/posts/abc", None)
        .await
        .problem(404);
    let r = h
        .as_user(&u, Method::POST, &format!("/api/v1/feed/follows/{u}"), None)
        .await;
    r.problem(400);
    assert_eq!(field(&r), vec!["user".to_owned()]);
    // Idempotency-Key: a retry answers the first post.
    let send = |key: &'static str, text: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/feed/posts")
            .header(header::AUTHORIZATION, format!("Bearer u:{u}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", key)
            .body(Body::from(json!({ "text": text }).to_string()))
            .expect("request")
    };
    let first = h.send(send("k1", "once")).await.ok(201);
    let again = h.send(send("k1", "once")).await.ok(201);
    assert_eq!(first["id"], again["id"]);
    h.send(send("k1", "other")).await.problem(422);
}

pub async fn unauthenticated_is_401(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    for (method, path) in [
        (Method::GET, "/api/v1/feed/timelines/home"),
        (Method::GET, "/api/v1/feed/timelines/home/stream"),
        (Method::POST, "/api/v1/feed/posts"),
        (Method::GET, "/api/v1/feed/posts/1"),
        (Method::POST, "/api/v1/feed/follows/x"),
        (Method::GET, "/api/v1/feed/users/x/posts"),
        (Method::POST, "/api/v1/feed/admin/follows"),
    ] {
        let body = (method == Method::POST).then(|| json!({"text": "t", "follows": [["a", "b"]]}));
        let body = if path.ends_with("admin/follows") {
            Some(json!({"follows": [["a", "b"]]}))
        } else if path.ends_with("/posts") && method == Method::POST {
            Some(json!({"text": "t"}))
        } else {
            body.map(|_| json!({}))
        };
        let body = if path.contains("follows/x") {
            None
        } else {
            body
        };
        h.call(None, method.clone(), path, body)
            .await
            .unauthorized();
    }
    // An API key without feed scopes is 403 naming the scope; an account may not import.
    let r = h
        .call(
            Some("key:k"),
            Method::GET,
            "/api/v1/feed/timelines/home",
            None,
        )
        .await;
    r.problem(403);
    assert_eq!(r.fields(), vec!["scope".to_owned()]);
    h.as_user(
        "someone",
        Method::POST,
        "/api/v1/feed/admin/follows",
        Some(json!({"follows": [["a", "b"]]})),
    )
    .await
    .problem(403);
}

pub async fn admin_imports_follows(kind: Kind) {
    let h = Harness::start(
        kind,
        FeedSettings {
            celebrity_threshold: 3,
            ..settings()
        },
    )
    .await;
    let star = user("star");
    let fans: Vec<String> = (0..5).map(|i| user(&format!("fan{i}"))).collect();
    let mut pairs: Vec<[String; 2]> = fans.iter().map(|f| [f.clone(), star.clone()]).collect();
    pairs.push([fans[0].clone(), star.clone()]);
    let r = h
        .call(
            Some(KEY),
            Method::POST,
            "/api/v1/feed/admin/follows",
            Some(json!({ "follows": pairs })),
        )
        .await
        .ok(200);
    assert_eq!(r["requested"], 6);
    assert_eq!(r["imported"], 5);
    // Imported followers count: the star's posts are pull now, and every fan sees them.
    let p = h.post(&star, "hello fans").await;
    let post = h
        .as_user(
            &fans[4],
            Method::GET,
            &format!("/api/v1/feed/posts/{p}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(post["fanout"], "pull");
    assert_eq!(h.home(&fans[2], "").await.0, vec![p]);
    // A user paired with itself is skipped, not refused.
    let r = h
        .call(
            Some(KEY),
            Method::POST,
            "/api/v1/feed/admin/follows",
            Some(json!({"follows": [["a", "a"]]})),
        )
        .await
        .ok(200);
    assert_eq!(
        (r["requested"].clone(), r["imported"].clone()),
        (json!(1), json!(0))
    );
    for (body, name) in [
        (json!({"follows": []}), "follows"),
        (json!({"follows": [["a", "b"], ["", "b"]]}), "follows[1]"),
    ] {
        let r = h
            .call(
                Some(KEY),
                Method::POST,
                "/api/v1/feed/admin/follows",
                Some(body),
            )
            .await;
        r.problem(400);
        assert_eq!(r.fields(), vec![name.to_owned()]);
    }
}

pub async fn pages_past_the_cap_come_from_the_database(kind: Kind) {
    let h = Harness::start(
        kind,
        FeedSettings {
            timeline_cap: 40,
            ..settings()
        },
    )
    .await;
    let (r, a) = (user("reader"), user("alice"));
    h.follow(&r, &a).await;
    h.activate(&r).await;
    let mut posts = Vec::new();
    for i in 0..55 {
        posts.push(h.post(&a, &format!("{i}")).await);
    }
    h.fanned_out().await;
    posts.reverse();
    assert_eq!(h.stored(&r).await, posts[..40], "capped at the newest 40");
    let mut got = Vec::new();
    let mut sources = Vec::new();
    let mut q = "limit=15".to_owned();
    loop {
        let (page, resp) = h.home(&r, &q).await;
        let Some(last) = page.last() else { break };
        sources.push(resp.header("x-feed-source").unwrap_or_default().to_owned());
        q = format!("limit=15&max_id={last}");
        got.extend(page);
    }
    assert_eq!(got, posts, "every post once, in order, across the cap");
    assert_eq!(sources.first().map(String::as_str), Some("store"));
    assert_eq!(sources.last().map(String::as_str), Some("database"));
}

pub async fn timeline_store_conformance(kind: Kind) {
    use praxis_feed::store::Range;
    let h = Harness::start(
        kind,
        FeedSettings {
            timeline_cap: 40,
            ..settings()
        },
    )
    .await;
    let t = h.feed.timelines().clone();
    let u = user("u");
    assert_eq!(t.state(&u).await.unwrap(), TimelineState::Missing);
    assert_eq!(
        t.push(std::slice::from_ref(&u), 1).await.unwrap(),
        0,
        "no write into a missing timeline"
    );
    assert_eq!(t.push_ids(&u, &[1, 2]).await.unwrap(), 0);
    assert!(t.begin_build(&u).await.unwrap());
    assert!(!t.begin_build(&u).await.unwrap(), "one rebuild at a time");
    assert_eq!(t.state(&u).await.unwrap(), TimelineState::Building);
    assert_eq!(
        t.push(std::slice::from_ref(&u), 1000).await.unwrap(),
        1,
        "written while building"
    );
    let ids: Vec<i64> = (1..=50).map(|i| i * 10).collect();
    t.finish_build(&u, &ids).await.unwrap();
    assert_eq!(t.state(&u).await.unwrap(), TimelineState::Built);
    let all = t.slice(&u, Range::ALL, 100).await.unwrap();
    assert_eq!(all.len, 40, "capped");
    assert_eq!(all.ids[0], 1000);
    assert_eq!(all.oldest, Some(120), "the oldest entries went first");
    let page = t
        .slice(
            &u,
            Range {
                above: 200,
                below: 260,
                desc: true,
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(page.ids, vec![250, 240]);
    let page = t
        .slice(
            &u,
            Range {
                above: 200,
                below: 260,
                desc: false,
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(page.ids, vec![210, 220]);
    assert_eq!(t.push_ids(&u, &[5000, 5001]).await.unwrap(), 2);
    assert_eq!(
        t.slice(&u, Range::ALL, 2).await.unwrap().ids,
        vec![5001, 5000]
    );
    // An empty built timeline is not a missing one.
    let e = user("empty");
    assert!(t.begin_build(&e).await.unwrap());
    t.finish_build(&e, &[]).await.unwrap();
    assert_eq!(t.state(&e).await.unwrap(), TimelineState::Built);
    assert!(t.slice(&e, Range::ALL, 10).await.unwrap().ids.is_empty());
    t.drop_timeline(&e).await.unwrap();
    assert_eq!(t.state(&e).await.unwrap(), TimelineState::Missing);
    t.clear().await.unwrap();
    assert_eq!(t.state(&u).await.unwrap(), TimelineState::Missing);
}

/// Scaled only: a post made through one process reaches a stream and the timelines served by
/// another.
pub async fn posts_cross_processes() {
    let (a, b) = Harness::pair(settings()).await;
    let (r, w) = (user("reader"), user("writer"));
    b.follow(&r, &w).await;
    b.activate(&r).await;
    let req = Request::builder()
        .uri("/api/v1/feed/timelines/home/stream")
        .header(header::AUTHORIZATION, format!("Bearer u:{r}"))
        .body(Body::empty())
        .expect("request");
    let res = b.app.clone().oneshot(req).await.expect("stream");
    let mut body = res.into_body();
    let p = a.post(&w, "from process a").await;
    let text = tokio::time::timeout(DEADLINE, async {
        let mut text = String::new();
        while !text.contains(&format!("id: {p}")) {
            let frame = body.frame().await.expect("open").expect("frame");
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        text
    })
    .await
    .expect("the post reaches the other process's stream");
    assert!(text.contains("from process a"), "{text}");
    a.fanned_out().await;
    b.fanned_out().await;
    let (home, resp) = b.home(&r, "").await;
    assert_eq!(home, vec![p]);
    assert_eq!(resp.header("x-feed-source"), Some("store"));
}

pub async fn late_fanout_is_not_paged_past(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a) = (user("reader"), user("alice"));
    h.follow(&r, &a).await;
    h.activate(&r).await;
    let p1 = h.post(&a, "older").await;
    let p2 = h.post(&a, "newer").await;
    h.fanned_out().await;
    // As if p1's fan-out ran late (another process, a retry): p2 is in the timeline, p1 not yet.
    sqlx::query("UPDATE feed_posts SET fanned_out_at = NULL WHERE id = $1")
        .bind(p1)
        .execute(h.backend.platform.db.pool())
        .await
        .unwrap();
    let t = h.feed.timelines().clone();
    t.drop_timeline(&r).await.unwrap();
    assert!(t.begin_build(&r).await.unwrap());
    t.finish_build(&r, &[p2]).await.unwrap();
    let (page1, _) = h.home(&r, "limit=1").await;
    assert_eq!(page1, vec![p2]);
    let (page2, resp) = h.home(&r, &format!("limit=1&max_id={p2}")).await;
    assert_eq!(
        page2,
        vec![p1],
        "the post whose fan-out is pending is not skipped"
    );
    assert_eq!(resp.header("x-feed-source"), Some("database"));
    // Once its fan-out is done the store is trusted again.
    sqlx::query("UPDATE feed_posts SET fanned_out_at = 1 WHERE id = $1")
        .bind(p1)
        .execute(h.backend.platform.db.pool())
        .await
        .unwrap();
    t.push(std::slice::from_ref(&r), p1).await.unwrap();
    let (all, resp) = h.home(&r, "").await;
    assert_eq!(all, vec![p2, p1]);
    assert_eq!(resp.header("x-feed-source"), Some("store"));
}

/// `GET /users/{user}/home`: the same page as that user's own home timeline, for that user or
/// the admin; anyone else gets 403.
pub async fn user_home_is_for_that_user_or_the_admin(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (reader, author, other) = (user("reader"), user("author"), user("other"));
    h.follow(&reader, &author).await;
    let p = h.post(&author, "for the reader").await;
    h.fanned_out().await;
    let own = h.home(&reader, "").await.0;
    assert_eq!(own, vec![p]);
    let path = format!("/api/v1/feed/users/{reader}/home");
    let as_self = h.as_user(&reader, Method::GET, &path, None).await.ok(200);
    assert_eq!(ids(&as_self), own, "the user reads their own home");
    let as_admin = h.call(Some(KEY), Method::GET, &path, None).await.ok(200);
    assert_eq!(ids(&as_admin), own, "the admin reads the user's home");
    h.as_user(&other, Method::GET, &path, None)
        .await
        .problem(403);
    h.call(None, Method::GET, &path, None).await.problem(401);
    let r = h
        .call(Some(KEY), Method::GET, &format!("{path}?limit=41"), None)
        .await;
    r.problem(400);
    assert_eq!(r.fields(), vec!["limit".to_owned()]);
}

/// Scaled: every Redis key of the feed expires, also a timeline set first created by a
/// fan-out into a timeline that was rebuilt empty (no set existed to inherit a TTL from).
pub async fn redis_timelines_always_expire() {
    let h = Harness::start(Kind::Scaled, settings()).await;
    let (reader, writer) = (user("reader"), user("writer"));
    h.follow(&reader, &writer).await;
    h.activate(&reader).await;
    let p = h.post(&writer, "into an empty built timeline").await;
    h.fanned_out().await;
    // Before any read of the timeline (a read refreshes the TTLs).
    let ttls = h.redis_ttls().await;
    assert!(
        ttls.iter().any(|(k, _)| k.contains(&reader)),
        "the reader's keys exist: {ttls:?}"
    );
    for (key, ttl) in &ttls {
        assert!(*ttl > 0, "{key} has no TTL ({ttl})");
    }
    assert_eq!(h.stored(&reader).await, vec![p]);
}

/// The text of post `id` on a page body.
fn text_of(body: &serde_json::Value, id: i64) -> Option<String> {
    body.as_array()?
        .iter()
        .find(|p| p["id"].as_str() == Some(&id.to_string()))
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
}

pub async fn post_cache_hydrates_pages_and_edits_deletes_invalidate(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let (r, a) = (user("reader"), user("alice"));
    h.follow(&r, &a).await;
    h.activate(&r).await;
    let p1 = h.post(&a, "first").await;
    let p2 = h.post(&a, "second").await;
    h.fanned_out().await;
    let (home, resp) = h.home(&r, "").await;
    assert_eq!(home, vec![p2, p1]);
    assert_eq!(resp.header("x-feed-source"), Some("store"));
    let (posts, relations) = h.feed.hydrator().entry_counts();
    assert!(
        posts >= 2 && relations >= 1,
        "{posts} posts, {relations} relations cached"
    );
    // A change behind the feed's back (no invalidation): the cached copy answers, so the page
    // was hydrated from the cache, not the table.
    sqlx::query("UPDATE feed_posts SET text = 'changed behind' WHERE id = $1")
        .bind(p1)
        .execute(h.backend.platform.db.pool())
        .await
        .unwrap();
    let (_, resp) = h.home(&r, "").await;
    assert_eq!(text_of(&resp.json(), p1).as_deref(), Some("first"));
    // An edit through the API is seen at once.
    let edited = h
        .as_user(
            &a,
            Method::PUT,
            &format!("/api/v1/feed/posts/{p1}"),
            Some(json!({"text": "first, edited"})),
        )
        .await
        .ok(200);
    assert_eq!(edited["text"], "first, edited");
    let (_, resp) = h.home(&r, "").await;
    assert_eq!(text_of(&resp.json(), p1).as_deref(), Some("first, edited"));
    // Only the author edits; the text is checked; unknown posts are 404.
    h.as_user(
        &r,
        Method::PUT,
        &format!("/api/v1/feed/posts/{p1}"),
        Some(json!({"text": "not mine"})),
    )
    .await
    .problem(403);
    h.as_user(
        &a,
        Method::PUT,
        &format!("/api/v1/feed/posts/{p1}"),
        Some(json!({"text": "  "})),
    )
    .await
    .problem(400);
    h.as_user(
        &a,
        Method::PUT,
        "/api/v1/feed/posts/999999999",
        Some(json!({"text": "x"})),
    )
    .await
    .problem(404);
    // A delete is seen at once, and a deleted post cannot be edited.
    h.as_user(
        &a,
        Method::DELETE,
        &format!("/api/v1/feed/posts/{p2}"),
        None,
    )
    .await
    .ok(204);
    assert_eq!(h.home(&r, "").await.0, vec![p1]);
    h.as_user(
        &a,
        Method::PUT,
        &format!("/api/v1/feed/posts/{p2}"),
        Some(json!({"text": "x"})),
    )
    .await
    .problem(404);
    // A relation change drops the cached relations: an unfollow empties the page at once.
    h.as_user(
        &r,
        Method::DELETE,
        &format!("/api/v1/feed/follows/{a}"),
        None,
    )
    .await
    .ok(200);
    assert_eq!(h.home(&r, "").await.0, Vec::<i64>::new());
}

/// Two scaled processes: a post cached by one is edited, then deleted, through the other; the
/// first drops its copy when the invalidation broadcast arrives (Redis pub/sub, milliseconds;
/// the deadline is only a guard against hanging).
pub async fn post_cache_invalidates_across_processes() {
    let (a, b) = Harness::pair(settings()).await;
    let (r, w) = (user("reader"), user("writer"));
    b.follow(&r, &w).await;
    b.activate(&r).await;
    let p = a.post(&w, "version 1").await;
    a.fanned_out().await;
    b.fanned_out().await;
    let (_, resp) = b.home(&r, "").await;
    assert_eq!(text_of(&resp.json(), p).as_deref(), Some("version 1"));
    a.as_user(
        &w,
        Method::PUT,
        &format!("/api/v1/feed/posts/{p}"),
        Some(json!({"text": "version 2"})),
    )
    .await
    .ok(200);
    let b2 = &b;
    let r2 = &r;
    eventually(
        DEADLINE,
        "the edit reaches the other process",
        || async move {
            let (_, resp) = b2.home(r2, "").await;
            (text_of(&resp.json(), p).as_deref() == Some("version 2")).then_some(())
        },
    )
    .await;
    a.as_user(&w, Method::DELETE, &format!("/api/v1/feed/posts/{p}"), None)
        .await
        .ok(204);
    eventually(
        DEADLINE,
        "the delete reaches the other process",
        || async move { b2.home(r2, "").await.0.is_empty().then_some(()) },
    )
    .await;
    // Relations too: a new post, then an unfollow through process a.
    let q = a.post(&w, "after").await;
    a.fanned_out().await;
    b.fanned_out().await;
    assert_eq!(b.home(&r, "").await.0, vec![q]);
    a.as_user(
        &r,
        Method::DELETE,
        &format!("/api/v1/feed/follows/{w}"),
        None,
    )
    .await
    .ok(200);
    eventually(
        DEADLINE,
        "the unfollow reaches the other process",
        || async move { b2.home(r2, "").await.0.is_empty().then_some(()) },
    )
    .await;
}
