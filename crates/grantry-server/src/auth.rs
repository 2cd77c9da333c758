//! API access: bearer tokens, checked against the stored hashes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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
    let caller = match state.tokens.get(&hash) {
        Some(caller) => caller,
        None => {
            let found = state.store.find_api_token(&hash).await.map_err(Error::from)?;
            let token = found.ok_or_else(|| {
                Error::Unauthorized(
                    "the API token is not valid; mint one with `grantry token create --name NAME`".into(),
                )
            })?;
            let caller = Arc::new(Caller { token_name: token.name, role: token.role });
            state.tokens.put(hash, caller.clone());
            caller
        }
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Known token hashes, so that a request needs no database read to be
/// authenticated. Only valid tokens are kept, each for `TTL`: a token removed
/// from the database stops working within that time.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, (Instant, Arc<Caller>)>>,
}

impl TokenCache {
    const TTL: Duration = Duration::from_secs(30);

    fn get(&self, hash: &str) -> Option<Arc<Caller>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(hash).filter(|(at, _)| at.elapsed() < Self::TTL).map(|(_, caller)| caller.clone())
    }

    fn put(&self, hash: String, caller: Arc<Caller>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (at, _)| at.elapsed() < Self::TTL);
        entries.insert(hash, (Instant::now(), caller));
    }
}
