//! API tokens (issue 8): minted with a role and an optional expiry, shown
//! once, stored as a hash, listed without values, revoked at once. The REST
//! routes (admin only) and `grantry token create|list|revoke` share `mint`,
//! `view` and `revoke`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use grantry_core::access::Role;
use grantry_core::store::{ApiToken, Store};
use grantry_core::{timestamp, Clock, Error, FieldErrors, Id};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::AppState;

/// What a new token is to be.
pub struct NewToken {
    pub name: String,
    pub role: Role,
    /// RFC 3339; in the future.
    pub expires_at: Option<String>,
}

impl NewToken {
    /// Checks `{"name", "role", "expires_at"?}`, naming every wrong field.
    pub fn parse(body: &Value, now: time::OffsetDateTime) -> Result<NewToken, Error> {
        let object = body.as_object().ok_or_else(|| Error::BadRequest("the body must be a JSON object".into()))?;
        let mut errors = FieldErrors::default();
        if let Some(unknown) = object.keys().find(|k| !matches!(k.as_str(), "name" | "role" | "expires_at")) {
            errors.add(unknown.as_str(), "is not a field of an API token (name, role, expires_at)");
        }
        let name = object.get("name").and_then(Value::as_str).map(str::trim).unwrap_or("");
        if name.is_empty() || name.len() > 200 {
            errors.add("name", "must be a non-blank string of at most 200 bytes");
        }
        let role = object.get("role").and_then(Value::as_str).and_then(Role::parse);
        if role.is_none() {
            errors.add("role", "must be one of: admin, editor, viewer, integration");
        }
        let expires_at = match object.get("expires_at") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_str().and_then(|s| parse_future(s, now)) {
                Some(t) => Some(t),
                None => {
                    errors.add("expires_at", "must be an RFC 3339 time in the future, such as 2027-01-01T00:00:00Z");
                    None
                }
            },
        };
        errors.into_result()?;
        Ok(NewToken { name: name.to_owned(), role: role.unwrap_or(Role::Viewer), expires_at })
    }
}

/// An RFC 3339 time after `now`, in Grantry's own fixed-width form.
pub fn parse_future(text: &str, now: time::OffsetDateTime) -> Option<String> {
    let t = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    (t > now && t.year() <= 9999).then(|| timestamp(t))
}

/// Stores a new token and returns it with its value, which exists only here.
pub async fn mint(store: &dyn Store, clock: &dyn Clock, new: NewToken) -> Result<(ApiToken, SecretString), Error> {
    let value = grantry_crypto::generate_api_token();
    let token = ApiToken {
        id: Id::generate(),
        name: new.name,
        role: new.role,
        token_hash: grantry_crypto::hash_api_token(value.expose_secret()),
        created_at: timestamp(clock.now()),
        expires_at: new.expires_at,
    };
    store.insert_api_token(&token).await?;
    Ok((token, value))
}

/// A token as listed: never its value or hash.
pub fn view(token: &ApiToken) -> Value {
    json!({
        "id": token.id.as_str(),
        "name": token.name,
        "role": token.role.as_str(),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    })
}

pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let new = NewToken::parse(&body, state.clock.now())?;
    let (token, value) = mint(state.store.as_ref(), state.clock.as_ref(), new).await?;
    let mut body = view(&token);
    body["token"] = json!(value.expose_secret());
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tokens = state.store.list_api_tokens().await.map_err(Error::from)?;
    let items: Vec<Value> = tokens.iter().map(view).collect();
    Ok(Json(json!({"items": items})).into_response())
}

/// Revokes a token: it stops working in this process at once, and the UI
/// sessions signed in with it end.
pub async fn revoke(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = Id::from_string(id);
    if !state.store.delete_api_token(&id).await.map_err(Error::from)? {
        return Err(Error::NotFound(format!("no API token has id `{id}`")).into());
    }
    state.tokens.forget(&id);
    state.ui.end_for_token(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
