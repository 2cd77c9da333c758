//! API tokens (docs/concepts.md §8.2): minted with a role and an optional
//! expiry, shown once, stored only as a hash, listed without values, revoked
//! at once. The REST routes, the UI's sign-in and `grantry token …` all go
//! through `ApiTokens`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::access::{Action, Caller, Role};
use crate::ports::{ApiToken, Clock, Store};
use crate::{timestamp, Error, FieldErrors, Id};

/// What a new token is to be.
pub struct NewToken {
    pub name: String,
    pub role: Role,
    /// In the future.
    pub expires_at: Option<OffsetDateTime>,
}

impl NewToken {
    /// Checks `{"name", "role", "expires_at"?}`, naming every wrong field.
    pub fn parse(body: &Value, now: OffsetDateTime) -> Result<NewToken, Error> {
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

/// An RFC 3339 time after `now`, to the millisecond (the stored precision).
pub fn parse_future(text: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let t = crate::parse_timestamp(text.trim())?;
    let t = crate::ports::whole_milliseconds(t.to_offset(time::UtcOffset::UTC));
    (t > now && t.year() <= 9999).then_some(t)
}

/// A token as listed: never its value or hash.
#[derive(Clone, Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub created_at: String,
    pub expires_at: Option<String>,
}

impl TokenView {
    fn of(token: &ApiToken) -> TokenView {
        TokenView {
            id: token.id.to_string(),
            name: token.name.clone(),
            role: token.role.as_str(),
            created_at: timestamp(token.created_at),
            expires_at: token.expires_at.map(timestamp),
        }
    }
}

/// A new API token: a recognisable prefix and 256 random bits.
pub fn generate() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let value = SecretString::from(format!("gry_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)));
    bytes.fill(0);
    value
}

/// The stored form of an API token. Tokens carry 256 random bits (or are chosen
/// by an operator for bootstrap, at least 32 characters), so a plain SHA-256 is
/// enough; lookups by hash need no salt.
pub fn hash(value: &str) -> String {
    sha2::Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub struct ApiTokens {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: TokenCache,
}

impl ApiTokens {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> ApiTokens {
        ApiTokens { store, clock, cache: TokenCache::default() }
    }

    /// The caller a token value stands for, if the token exists and has not expired.
    pub async fn authenticate(&self, value: &str) -> Result<Option<Arc<Caller>>, Error> {
        self.authenticate_hash(&hash(value)).await
    }

    /// As `authenticate`, for a token known by its hash (a UI session keeps only that).
    pub async fn authenticate_hash(&self, digest: &str) -> Result<Option<Arc<Caller>>, Error> {
        let digest = digest.to_owned();
        let now = self.clock.now();
        let caller = match self.cache.get(&digest, now) {
            Some(caller) => caller,
            None => match self.store.find_api_token(&digest).await? {
                None => return Ok(None),
                Some(token) => {
                    let caller = Arc::new(Caller::api_token(token.id, token.name, token.role, token.expires_at));
                    self.cache.put(digest, caller.clone(), now);
                    caller
                }
            },
        };
        let expired = caller.expires_at.is_some_and(|at| at <= now);
        Ok((!expired).then_some(caller))
    }

    /// Stores a new token and returns it with its value, which exists only here.
    pub async fn mint(&self, caller: &Caller, new: NewToken) -> Result<(TokenView, SecretString), Error> {
        caller.check(Action::ManageTokens)?;
        let value = generate();
        let token = ApiToken {
            id: Id::generate(),
            name: new.name,
            role: new.role,
            token_hash: hash(value.expose_secret()),
            created_at: self.clock.now(),
            expires_at: new.expires_at,
        };
        self.store.insert_api_token(&token).await?;
        Ok((TokenView::of(&token), value))
    }

    /// Every token, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<TokenView>, Error> {
        caller.check(Action::ManageTokens)?;
        Ok(self.store.list_api_tokens().await?.iter().map(TokenView::of).collect())
    }

    /// Revokes a token: it stops working in this process at once (in others
    /// within `TokenCache::TTL`).
    pub async fn revoke(&self, caller: &Caller, id: &Id) -> Result<(), Error> {
        caller.check(Action::ManageTokens)?;
        if !self.store.delete_api_token(id).await? {
            return Err(Error::NotFound(format!("no API token has id `{id}`")));
        }
        self.cache.forget(id);
        Ok(())
    }

    /// On the first start there is no token: stores the admin token, the
    /// operator's `chosen` one or a new one, and returns it when it was new.
    /// Nothing happens once any token exists.
    pub async fn bootstrap(&self, chosen: Option<SecretString>) -> Result<Bootstrap, Error> {
        if self.store.count_api_tokens().await? > 0 {
            return Ok(Bootstrap::Existed);
        }
        let (value, outcome) = match chosen {
            Some(value) => (value, None),
            None => {
                let value = generate();
                (value.clone(), Some(value))
            }
        };
        let token = ApiToken {
            // One id for the first token: processes starting at the same moment
            // on an empty database collide on it, and only one token is made.
            id: Id::from_string(BOOTSTRAP_ID),
            name: "bootstrap admin".into(),
            role: Role::Admin,
            token_hash: hash(value.expose_secret()),
            created_at: self.clock.now(),
            expires_at: None,
        };
        if let Err(e) = self.store.insert_api_token(&token).await {
            return match self.store.count_api_tokens().await? {
                0 => Err(e.into()),
                // Another process made the first token meanwhile; ours was not stored.
                _ => Ok(Bootstrap::Existed),
            };
        }
        Ok(match outcome {
            Some(value) => Bootstrap::Generated(value),
            None => Bootstrap::Chosen,
        })
    }
}

/// The id of the token made on the first start.
const BOOTSTRAP_ID: &str = "00000000-0000-7000-8000-000000000001";

/// What `ApiTokens::bootstrap` did.
pub enum Bootstrap {
    /// A token existed already.
    Existed,
    /// The operator's token was stored.
    Chosen,
    /// A new token was made: its value, to be shown once.
    Generated(SecretString),
}

/// Known token hashes, so that a request needs no database read to be
/// authenticated. Only valid tokens are kept, each for `TTL`: a token revoked
/// by this process is dropped at once, one removed by another within `TTL`.
#[derive(Default)]
struct TokenCache {
    entries: RwLock<HashMap<String, (OffsetDateTime, Arc<Caller>)>>,
}

impl TokenCache {
    /// As long as the hot path trusts a cached authorization (`flows::fresh::CACHE_TTL`):
    /// a revocation or a change by another process holds everywhere within 1 s.
    const TTL: time::Duration = time::Duration::seconds(1);

    fn get(&self, digest: &str, now: OffsetDateTime) -> Option<Arc<Caller>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(digest).filter(|(at, _)| now - *at < Self::TTL).map(|(_, caller)| caller.clone())
    }

    fn put(&self, digest: String, caller: Arc<Caller>, now: OffsetDateTime) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (at, _)| now - *at < Self::TTL);
        entries.insert(digest, (now, caller));
    }

    fn forget(&self, token_id: &Id) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).retain(|_, (_, c)| c.token_id() != Some(token_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert!(a.expose_secret().starts_with("gry_") && a.expose_secret().len() > 40);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(hash(a.expose_secret()), hash(a.expose_secret()));
        assert_eq!(hash(a.expose_secret()).len(), 64);
        assert!(!hash(a.expose_secret()).contains(a.expose_secret()));
        assert_ne!(hash(a.expose_secret()), hash(b.expose_secret()));
    }
}
