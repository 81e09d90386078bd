//! /api/openapi.json merges every service's description.

use crate::support::TestApp;

#[tokio::test]
async fn document_merges_services_and_ops() {
    let app = TestApp::new().await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["info"]["title"], "praxis");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/api/v1/test/items", "/healthz", "/readyz", "/metrics"] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in ["Problem", "FieldError", "NewItem", "Item"] {
        assert!(schemas.get(schema).is_some(), "missing schema {schema}");
    }
}
