//! The API token routes: thin handlers over `grantry_core::tokens::ApiTokens`,
//! which `grantry token create|list|revoke` uses too.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use grantry_core::access::Caller;
use grantry_core::tokens::NewToken;
use grantry_core::{Error, Id};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::AppState;

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new = NewToken::parse(&body, state.clock.now())?;
    let (view, value) = state.api_tokens.mint(&caller, new).await?;
    let mut body = serde_json::to_value(&view).map_err(|e| Error::Internal(e.to_string()))?;
    body["token"] = json!(value.expose_secret());
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
) -> Result<Response, ApiError> {
    let items = state.api_tokens.list(&caller).await?;
    Ok(Json(json!({"items": items})).into_response())
}

/// Revokes a token; the UI sessions signed in with it end too.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Id::from_string(id);
    state.api_tokens.revoke(&caller, &id).await?;
    state.ui.end_for_token(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
