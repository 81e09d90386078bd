//! Cursor pagination through a real route.

use crate::support::TestApp;

#[tokio::test]
async fn walks_every_page_once() {
    let app = TestApp::new().await;
    let mut seen = Vec::new();
    let mut uri = "/api/v1/test/items?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let v = app.get(&uri).await.json();
        pages += 1;
        seen.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_u64().unwrap()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/test/items?limit=10&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..25).collect::<Vec<u64>>());
}

#[tokio::test]
async fn default_and_maximum_limits() {
    let app = TestApp::new().await;
    assert_eq!(
        app.get("/api/v1/test/items").await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let last = app.get("/api/v1/test/items?limit=20").await.json();
    assert_eq!(last["items"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn bad_limit_and_cursor_are_400_naming_the_parameter() {
    let app = TestApp::new().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=21", "limit"),
        ("limit=1000", "limit"),
        ("limit=", "limit"),
        ("limit=99999999999", "limit"),
        ("cursor=%21%21", "cursor"),
        ("cursor=bm90IGpzb24", "cursor"),
    ] {
        let r = app.get(&format!("/api/v1/test/items?{query}")).await;
        let p = r.assert_problem(400, "validation");
        assert_eq!(p["errors"][0]["field"], field, "{query}: {p}");
    }
}

#[tokio::test]
async fn an_empty_cursor_is_the_first_page() {
    let app = TestApp::new().await;
    let v = app.get("/api/v1/test/items?cursor=&limit=3").await.json();
    assert_eq!(v["items"][0]["id"], 0, "{v}");
}

#[tokio::test]
async fn last_page_has_no_cursor() {
    let app = TestApp::new().await;
    let v = app.get("/api/v1/test/items?limit=20").await.json();
    let c = v["next_cursor"].as_str().unwrap();
    let v = app
        .get(&format!("/api/v1/test/items?limit=20&cursor={c}"))
        .await
        .json();
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
    assert!(v["next_cursor"].is_null());
}
