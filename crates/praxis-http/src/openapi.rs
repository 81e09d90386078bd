//! Assembly of the one OpenAPI document: every service's description merged into one, checked
//! for clashes, and completed with the answers the shared request stack gives on every route.
//!
//! utoipa's `OpenApi::merge` keeps the first of two schemas with the same name and drops the
//! second silently, so two systems that both name a type `BulkResult` would have one of them
//! documented with the other's shape. [`merge_documents`] refuses that: a component or an
//! operation defined differently by two services is a [`Clash`].

use std::collections::BTreeMap;

use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr, Response, ResponseBuilder};

use crate::problem::Problem;

/// Two services define the same name differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Clash {
    /// A component (schema, response or security scheme) of the same kind and name.
    #[error(
        "{kind} {name:?} is defined differently by {first} and {second}: give each its own name"
    )]
    Component {
        /// `"schema"`, `"response"` or `"security scheme"`.
        kind: &'static str,
        /// The component's name.
        name: String,
        /// The service whose definition came first.
        first: String,
        /// The service that defined it again.
        second: String,
    },
    /// An operation (path and method) described by two services.
    #[error("{method} {path} is described by both {first} and {second}")]
    Operation {
        /// The method, upper case.
        method: String,
        /// The path template.
        path: String,
        /// The service whose description came first.
        first: String,
        /// The service that described it again.
        second: String,
    },
}

/// Merges the documents of named services into `base`. A component of the same name defined
/// identically by two services (a shared type such as `Problem`) is kept once; defined
/// differently, or an operation described twice, it is a [`Clash`] (all of them are returned).
pub fn merge_documents<'a>(
    mut base: OpenApi,
    docs: impl IntoIterator<Item = (&'a str, OpenApi)>,
) -> Result<OpenApi, Vec<Clash>> {
    let mut seen = Seen::default();
    for (service, doc) in docs {
        seen.scan(service, &doc);
        base.merge(doc);
    }
    if seen.clashes.is_empty() {
        Ok(base)
    } else {
        Err(seen.clashes)
    }
}

/// The clashes [`merge_documents`] would find among these documents (none: they merge).
pub fn find_clashes<'a>(docs: impl IntoIterator<Item = (&'a str, &'a OpenApi)>) -> Vec<Clash> {
    let mut seen = Seen::default();
    for (service, doc) in docs {
        seen.scan(service, doc);
    }
    seen.clashes
}

/// What [`merge_documents`] has seen so far: who defined each component (and how), who
/// described each operation, and the clashes.
#[derive(Default)]
struct Seen {
    components: BTreeMap<(&'static str, String), (String, serde_json::Value)>,
    operations: BTreeMap<(&'static str, String), String>,
    clashes: Vec<Clash>,
}

impl Seen {
    /// Notes the components and operations of `service`'s document.
    fn scan(&mut self, service: &str, doc: &OpenApi) {
        if let Some(components) = &doc.components {
            for (name, schema) in &components.schemas {
                self.component("schema", name, service, schema);
            }
            for (name, response) in &components.responses {
                self.component("response", name, service, response);
            }
            for (name, scheme) in &components.security_schemes {
                self.component("security scheme", name, service, scheme);
            }
        }
        for (path, item) in &doc.paths.paths {
            for method in operation_methods(item) {
                self.operation(method, path, service);
            }
        }
    }

    fn component(
        &mut self,
        kind: &'static str,
        name: &str,
        service: &str,
        value: &impl serde::Serialize,
    ) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        match self.components.get(&(kind, name.to_owned())) {
            Some((first, earlier)) if *earlier != value => self.clashes.push(Clash::Component {
                kind,
                name: name.to_owned(),
                first: first.clone(),
                second: service.to_owned(),
            }),
            Some(_) => {}
            None => {
                self.components
                    .insert((kind, name.to_owned()), (service.to_owned(), value));
            }
        }
    }

    fn operation(&mut self, method: &'static str, path: &str, service: &str) {
        match self.operations.get(&(method, path.to_owned())) {
            Some(first) => self.clashes.push(Clash::Operation {
                method: method.to_owned(),
                path: path.to_owned(),
                first: first.clone(),
                second: service.to_owned(),
            }),
            None => {
                self.operations
                    .insert((method, path.to_owned()), service.to_owned());
            }
        }
    }
}

fn operation_methods(item: &utoipa::openapi::PathItem) -> Vec<&'static str> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("PATCH", &item.patch),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.is_some().then_some(m))
    .collect()
}

/// Adds to every operation the answers the shared stack gives whatever the route: 415 on each
/// operation whose request body is JSON (the [`crate::Json`] extractor refuses a missing or
/// other content type before the handler runs). An operation that documents one already keeps
/// its own.
pub fn document_stack_answers(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            let json_body = op.request_body.as_ref().is_some_and(|body| match body {
                RefOr::T(body) => {
                    !body.content.is_empty() && body.content.keys().all(|ct| is_json(ct))
                }
                RefOr::Ref(_) => false,
            });
            if json_body {
                op.responses
                    .responses
                    .entry("415".to_owned())
                    .or_insert_with(unsupported_media_type);
            }
        }
    }
}

/// Sets the `maximum` of every query parameter named `name`: for a bound that comes from a
/// setting (e.g. a page size maximum), so the document states the configured one.
pub fn set_query_maximum(doc: &mut OpenApi, name: &str, maximum: u64) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::Schema;
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            for param in op.parameters.iter_mut().flatten() {
                let RefOr::T(param) = param else { continue };
                if param.name == name
                    && matches!(param.parameter_in, ParameterIn::Query)
                    && let Some(RefOr::T(Schema::Object(object))) = param.schema.as_mut()
                {
                    object.maximum = Some(maximum.into());
                }
            }
        }
    }
}

/// Sets the `enum` of the property `property` of the component schema `schema`: for values
/// known only at run time (e.g. the time zone names of the bundled database). Nothing happens
/// when the schema or property is not an inline object schema.
pub fn set_property_enum(
    doc: &mut OpenApi,
    schema: &str,
    property: &str,
    values: impl IntoIterator<Item = serde_json::Value>,
) {
    use utoipa::openapi::schema::Schema;
    let Some(RefOr::T(Schema::Object(object))) = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(schema))
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(p))) = object.properties.get_mut(property) {
        p.enum_values = Some(values.into_iter().collect());
    }
}

/// Sets the `maximum` of the numeric property `property` of the component schema `schema`: for
/// a bound that comes from a setting. Nothing happens when the schema or property is not an
/// inline object schema.
pub fn set_property_maximum(doc: &mut OpenApi, schema: &str, property: &str, maximum: u64) {
    use utoipa::openapi::schema::Schema;
    let Some(RefOr::T(Schema::Object(object))) = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(schema))
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(p))) = object.properties.get_mut(property) {
        p.maximum = Some(maximum.into());
    }
}

/// Sets the `maximum` of every header parameter named `name` (compared without case): for a
/// bound that comes from a setting.
pub fn set_header_maximum(doc: &mut OpenApi, name: &str, maximum: u64) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::Schema;
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            for param in op.parameters.iter_mut().flatten() {
                let RefOr::T(param) = param else { continue };
                if param.name.eq_ignore_ascii_case(name)
                    && matches!(param.parameter_in, ParameterIn::Header)
                    && let Some(RefOr::T(Schema::Object(object))) = param.schema.as_mut()
                {
                    object.maximum = Some(maximum.into());
                }
            }
        }
    }
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn unsupported_media_type() -> RefOr<Response> {
    let problem = utoipa::openapi::content::ContentBuilder::new()
        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            <Problem as utoipa::ToSchema>::name(),
        ))))
        .build();
    RefOr::T(
        ResponseBuilder::new()
            .description(
                "The body is not sent as `application/json` (missing or other `Content-Type`)",
            )
            .content("application/problem+json", problem)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use utoipa::openapi::OpenApiBuilder;
    use utoipa::{OpenApi as _, ToSchema};

    use super::*;

    mod a {
        use super::*;
        /// Shortener's.
        #[derive(Serialize, ToSchema)]
        pub struct BulkResult {
            pub created: u32,
        }
        #[utoipa::path(post, path = "/a", request_body = BulkResult, responses((status = 200, body = crate::problem::FieldError)))]
        #[allow(dead_code)]
        pub async fn create() {}
        #[derive(utoipa::OpenApi)]
        #[openapi(
            paths(create),
            components(schemas(BulkResult, crate::problem::FieldError))
        )]
        pub struct Doc;
    }

    mod b {
        use super::*;
        /// Notify's.
        #[derive(Serialize, ToSchema)]
        pub struct BulkResult {
            pub accepted: Vec<String>,
        }
        #[utoipa::path(get, path = "/b", responses((status = 200, body = BulkResult)))]
        #[allow(dead_code)]
        pub async fn list() {}
        #[derive(utoipa::OpenApi)]
        #[openapi(
            paths(list),
            components(schemas(BulkResult, crate::problem::FieldError))
        )]
        pub struct Doc;
    }

    fn base() -> OpenApi {
        OpenApiBuilder::new().build()
    }

    #[test]
    fn a_schema_named_alike_by_two_services_is_a_clash() {
        let clashes = merge_documents(base(), [("a", a::Doc::openapi()), ("b", b::Doc::openapi())])
            .err()
            .expect("BulkResult twice");
        assert_eq!(
            clashes,
            vec![Clash::Component {
                kind: "schema",
                name: "BulkResult".into(),
                first: "a".into(),
                second: "b".into(),
            }]
        );
        assert!(clashes[0].to_string().contains("BulkResult"));
        let (a, b) = (a::Doc::openapi(), b::Doc::openapi());
        assert_eq!(find_clashes([("a", &a), ("b", &b)]), clashes);
    }

    #[test]
    fn identical_shared_schemas_merge_once() {
        let doc = merge_documents(base(), [("a", a::Doc::openapi())]).expect("one");
        let twice = merge_documents(base(), [("a", a::Doc::openapi()), ("b", b_without_bulk())])
            .expect("FieldError is shared, not a clash");
        let schemas = &twice.components.expect("components").schemas;
        assert!(schemas.contains_key("FieldError") && schemas.contains_key("BulkResult"));
        assert!(doc.paths.paths.contains_key("/a"));
    }

    fn b_without_bulk() -> OpenApi {
        let mut doc = b::Doc::openapi();
        if let Some(c) = doc.components.as_mut() {
            c.schemas.remove("BulkResult");
        }
        doc
    }

    #[test]
    fn an_operation_described_twice_is_a_clash() {
        let clashes = merge_documents(
            base(),
            [("a", a::Doc::openapi()), ("a2", a::Doc::openapi())],
        )
        .err()
        .expect("POST /a twice");
        assert_eq!(
            clashes,
            vec![Clash::Operation {
                method: "POST".into(),
                path: "/a".into(),
                first: "a".into(),
                second: "a2".into(),
            }]
        );
    }

    #[test]
    fn json_body_operations_document_415() {
        let mut doc = merge_documents(base(), [("a", a::Doc::openapi()), ("b", b_without_bulk())])
            .expect("merge");
        document_stack_answers(&mut doc);
        let json = serde_json::to_value(&doc).expect("json");
        let post = &json["paths"]["/a"]["post"]["responses"];
        assert!(
            post["415"]["content"]["application/problem+json"].is_object(),
            "{post}"
        );
        let get = &json["paths"]["/b"]["get"]["responses"];
        assert!(get.get("415").is_none(), "no body, no 415: {get}");
    }
}
