//! The problem answers most routes share, for the `responses(...)` of `#[utoipa::path]`:
//! name the type (`responses((status = 200, ...), BadRequest, Unauthorized, Forbidden)`)
//! instead of repeating its line on every route. A route whose answer means something of its
//! own (a 404, a 409 with its slug) still writes that line.

use crate::problem::Problem;

/// 400: invalid input; `errors` names each failing field.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 400,
    description = "Invalid input; `errors` names each failing field",
    content_type = "application/problem+json"
)]
pub struct BadRequest(pub Problem);

/// 401: missing or invalid credentials.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "Missing or invalid credentials",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(pub Problem);

/// 403: the credentials lack the scope (or role) the route needs; the problem names it.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 403,
    description = "The credentials lack the scope or role this route needs",
    content_type = "application/problem+json"
)]
pub struct Forbidden(pub Problem);

/// 409: the request conflicts with the resource's state (or another request with the same
/// `Idempotency-Key` is still running); `type` says which.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 409,
    description = "Conflicts with the resource's state; `type` says how",
    content_type = "application/problem+json"
)]
pub struct Conflict(pub Problem);

/// 422: the `Idempotency-Key` was already used for a different request.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 422,
    description = "Idempotency-Key already used for a different request",
    content_type = "application/problem+json"
)]
pub struct Unprocessable(pub Problem);
