//! What each system hands the binary: its routes and their OpenAPI description.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// A system's HTTP surface. Routes use their full paths (`/api/v1/<system>/...`, or the
/// shortener's public `/{code}`) and are merged into the app as they are.
pub struct Service {
    /// The system's name, e.g. `"shortener"`.
    pub name: &'static str,
    /// The system's routes (state already applied).
    pub router: Router,
    /// The OpenAPI description of those routes.
    pub openapi: OpenApi,
    /// Routes (their path templates, as registered: `/api/v1/files/tus/{id}`) whose handlers
    /// stream the request body themselves: the stack neither cuts their bodies at `body_limit`
    /// nor times them out, so the handler bounds both (an upload's declared length, a quota,
    /// an idle timeout between chunks).
    pub streaming: Vec<&'static str>,
}

impl Service {
    /// A service from a router and its description.
    pub fn new(name: &'static str, router: Router, openapi: OpenApi) -> Self {
        Self {
            name,
            router,
            openapi,
            streaming: Vec::new(),
        }
    }

    /// Marks `routes` as streaming (see [`Service::streaming`]).
    pub fn with_streaming(mut self, routes: &[&'static str]) -> Self {
        self.streaming.extend_from_slice(routes);
        self
    }

    /// A service from a `utoipa_axum` router, which collects the description with the routes.
    pub fn from_openapi_router(name: &'static str, router: OpenApiRouter) -> Self {
        let (router, openapi) = router.split_for_parts();
        Self::new(name, router, openapi)
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
