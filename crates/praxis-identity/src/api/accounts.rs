//! Sign-up, login, refresh, logout, `me`, password change.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use praxis_http::Require;
use praxis_http::access::Authenticated;
use praxis_http::auth::PrincipalKind;
use praxis_http::idempotency::run_idempotent;
use praxis_http::responses::{Unauthorized, Unprocessable};
use praxis_http::{Json, Problem};

use super::dto::{
    AccountView, Credentials, Login, MeView, PasswordChange, RefreshRequest, SignUp, TokenPair,
};
use super::{AppState, ClientIp, TAG, no_store};
use crate::workers::accounts::Session;

fn pair(s: Session) -> TokenPair {
    TokenPair {
        access_token: s.access.token,
        token_type: "Bearer",
        expires_in: s.access.expires_in,
        refresh_token: s.refresh_token,
        refresh_expires_in: s.refresh_expires_in,
        account: AccountView::from(&s.account),
    }
}

/// Create an account.
///
/// The email is case-insensitive and must be unused; the password has 12 to 128 characters.
/// New accounts have the `user` role and the `free` plan. A retry with the same
/// `Idempotency-Key` and body replays the first answer.
#[utoipa::path(
    post,
    path = "/api/v1/identity/signup",
    tag = TAG,
    request_body = SignUp,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a retried sign-up", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created", body = AccountView),
        (status = 400, description = "Invalid email or password; `errors` names each field", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        Unprocessable,
    )
)]
pub async fn sign_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<Credentials>,
) -> Result<Response, Problem> {
    let body = serde_json::to_vec(&req).unwrap_or_default();
    run_idempotent(
        &state.core.idempotency,
        &headers,
        "identity:POST /api/v1/identity/signup",
        "POST /api/v1/identity/signup",
        &body,
        || async {
            let account = state.core.sign_up(&req.email, &req.password).await?;
            let json =
                serde_json::to_vec(&AccountView::from(&account)).map_err(Problem::internal)?;
            Ok((StatusCode::CREATED, json))
        },
    )
    .await
}

/// Log in: trade email and password for an access token and a refresh token.
///
/// A wrong password and an unknown email get the same 401 after the same work. Attempts are
/// limited per account and per client IP (429 with `Retry-After`).
#[utoipa::path(
    post,
    path = "/api/v1/identity/login",
    tag = TAG,
    request_body = Login,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 400, description = "Missing email or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(req): Json<Credentials>,
) -> Result<Response, Problem> {
    let session = state.core.login(&req.email, &req.password, client).await?;
    Ok(no_store(Json(pair(session)).into_response()))
}

/// Rotate a refresh token: the presented token becomes unusable and a new pair is returned.
///
/// Presenting a refresh token that was already used revokes every token of its login (its
/// family) and answers 401: the token was copied.
#[utoipa::path(
    post,
    path = "/api/v1/identity/refresh",
    tag = TAG,
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenPair),
        (status = 400, description = "Missing refresh_token", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> Result<Response, Problem> {
    let session = state.core.refresh(&req.refresh_token).await?;
    Ok(no_store(Json(pair(session)).into_response()))
}

/// Log out: revoke the refresh token and every token of its login. Access tokens already
/// issued work until they expire (minutes).
#[utoipa::path(
    post,
    path = "/api/v1/identity/logout",
    tag = TAG,
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Logged out (also for unknown tokens)"),
        (status = 400, description = "Not a refresh token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> Result<StatusCode, Problem> {
    state.core.logout(&req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the presented credentials belong to.
#[utoipa::path(
    get,
    path = "/api/v1/identity/me",
    tag = TAG,
    responses(
        (status = 200, description = "The caller", body = MeView),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn me(
    State(state): State<AppState>,
    who: Require<Authenticated>,
) -> Result<Json<MeView>, Problem> {
    let who = who.principal();
    let account = state.core.account_of(who).await?;
    let (credential, key_id) = match &who.kind {
        PrincipalKind::Account => ("access_token", None),
        PrincipalKind::ApiKey { key_id } => ("api_key", Some(key_id.clone())),
        PrincipalKind::BootstrapAdmin => ("bootstrap_admin", None),
    };
    Ok(Json(MeView {
        subject: who.subject.clone(),
        credential,
        key_id,
        scopes: who.scopes.clone(),
        admin: who.admin,
        plan: who.plan.clone(),
        account: account.as_ref().map(AccountView::from),
    }))
}

/// Change the caller's password. Needs an access token (not an API key) and the current
/// password; revokes every refresh token of the account, so other sessions end when their
/// access tokens expire.
#[utoipa::path(
    put,
    path = "/api/v1/identity/me/password",
    tag = TAG,
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Wrong current password or weak new one; `errors` names the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an access token", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn change_password(
    State(state): State<AppState>,
    who: Require<Authenticated>,
    Json(req): Json<PasswordChange>,
) -> Result<StatusCode, Problem> {
    let who = who.principal();
    state
        .core
        .change_password(who, &req.current_password, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
