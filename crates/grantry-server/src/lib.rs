//! Grantry's HTTP surface: the REST API with its OpenAPI document, token
//! authentication, request logging and the error mapping.

mod api;
pub mod auth;
pub mod error;
mod extract;
mod oauth;
pub mod openapi;
pub mod outbound;
mod proxy;
pub mod routes;
pub mod tokens;
pub mod ui;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use grantry_core::flows::Flows;
use grantry_core::ports::Clock;
use grantry_core::service::Records;
use grantry_core::tokens::ApiTokens;
use grantry_core::{Error, ErrorCode};
use serde_json::json;

use crate::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub records: Arc<Records>,
    pub flows: Arc<Flows>,
    pub public_url: String,
    /// The outgoing HTTP client, for the proxy's streamed answers.
    pub outbound: Arc<outbound::Outbound>,
    /// Signed-in people of the admin UI.
    pub ui: Arc<ui::Sessions>,
    pub api_tokens: Arc<ApiTokens>,
    pub clock: Arc<dyn Clock>,
    /// Failed bearer tokens per client address.
    pub bearer_failures: Arc<auth::Throttle>,
    /// Failed UI sign-ins per client address, counted apart.
    pub sign_in_failures: Arc<auth::Throttle>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<outbound::Network>>,
}

impl AppState {
    /// Whether browsers reach Grantry over https: cookies are `Secure` and
    /// answers carry `Strict-Transport-Security`.
    pub fn secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

pub fn router(state: AppState) -> Router {
    let mut api = Router::new();
    for (path, handler) in routes::grouped(routes::Access::Bearer) {
        api = api.route(path, handler);
    }
    let api = api.route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let mut public = Router::new();
    for (path, handler) in routes::grouped(routes::Access::Public) {
        public = public.route(path, handler);
    }
    public
        .merge(api)
        .merge(ui::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), transport_security))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Under an https public URL, browsers are told to stay on https.
async fn transport_security(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if state.secure() {
        response.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found(req: Request) -> ApiError {
    ApiError(Error::NotFound(format!("nothing is served at {}; see /api/v1/openapi.json", req.uri().path())))
}

async fn method_not_allowed(req: Request) -> Response {
    let body = json!({"error": {"code": ErrorCode::MethodNotAllowed, "message": format!("{} is not allowed on {}", req.method(), req.uri().path())}});
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// One line per request: method, path (never the query or headers, which may
/// carry tokens; never the state a generic callback carries in its path),
/// status and time taken.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = match req.uri().path() {
        p if p.starts_with("/oauth/callback/") => "/oauth/callback/{state}".to_owned(),
        p => p.to_owned(),
    };
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(%method, %path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    response
}
