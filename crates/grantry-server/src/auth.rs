//! API access: bearer tokens, checked against the stored hashes.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use grantry_core::Error;

use crate::error::ApiError;
use crate::AppState;

/// Who is calling: the token's name and role.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token_name: String,
    pub role: String,
}

pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Unauthorized("this endpoint needs an API token: send `Authorization: Bearer <token>`".into())
        })?;
    let hash = grantry_crypto::hash_api_token(token);
    let found = state.store.find_api_token(&hash).await.map_err(Error::from)?;
    let token = found.ok_or_else(|| {
        Error::Unauthorized("the API token is not valid; mint one with `grantry token create --name NAME`".into())
    })?;
    req.extensions_mut().insert(Caller { token_name: token.name, role: token.role });
    Ok(next.run(req).await)
}
