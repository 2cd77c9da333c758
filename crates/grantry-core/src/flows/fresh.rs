//! The hot path (docs/concepts.md §4.4): a fresh access token, served from a
//! short in-process cache when it is far from expiry, refreshed first when it
//! is close.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{check_usable, not_found, set_status, state_error, Flows, Parts};
use crate::access::{Action, Caller};
use crate::oauth2::{self, Freshness};
use crate::{
    AuthorizationType, Error, ErrorCode, GrantType, Id, Kind, NaturalKey, NotificationLevel, Record, RefreshStrategy,
    Status,
};

/// A usable access token and the answer of the fresh-token endpoint, built
/// once per token and served from memory until the token changes.
#[derive(Clone)]
pub struct FreshToken(Arc<Token>);

struct Token {
    access_token: SecretString,
    token_type: String,
    authorization_header: SecretString,
    /// The whole answer of the fresh-token endpoint, built once.
    json: SecretString,
}

impl fmt::Debug for FreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FreshToken({} ..)", self.0.token_type)
    }
}

impl FreshToken {
    /// A token of type `token_type` that expires at `expires_at` (a JSON time or null).
    pub(crate) fn new(token: SecretString, token_type: String, expires_at: Value) -> FreshToken {
        let header = format!("{token_type} {}", token.expose_secret());
        let json = json!({
            "access_token": token.expose_secret(),
            "token_type": token_type,
            "expires_at": expires_at,
            "authorization_header": header,
        })
        .to_string();
        FreshToken(Arc::new(Token {
            access_token: token,
            token_type,
            authorization_header: SecretString::from(header),
            json: SecretString::from(json),
        }))
    }

    pub fn access_token(&self) -> SecretString {
        self.0.access_token.clone()
    }
    pub fn token_type(&self) -> &str {
        &self.0.token_type
    }
    /// `<token type> <access token>`, the value of an `Authorization` header.
    pub fn authorization_header(&self) -> &str {
        self.0.authorization_header.expose_secret()
    }
    /// The answer of `GET …/token` as JSON text.
    pub fn json(&self) -> &str {
        self.0.json.expose_secret()
    }
}

/// An authorization as last read, with its token answer ready when it has one.
#[derive(Clone)]
pub(crate) struct Cached {
    at: OffsetDateTime,
    record: Arc<Record>,
    view: Option<FreshToken>,
    expires_at: Option<OffsetDateTime>,
}

/// How long a cached authorization is trusted without reading it again.
pub(crate) const CACHE_TTL: time::Duration = time::Duration::seconds(1);

pub(crate) fn can_refresh(parts: &Parts) -> bool {
    parts.auth.grant_type() == GrantType::ClientCredentials
        || parts.provider.refresh_strategy() != RefreshStrategy::None
}

impl Flows {
    /// A usable access token: refreshed first when it expires within the margin.
    pub async fn fresh_token(&self, caller: &Caller, id: &Id) -> Result<FreshToken, Error> {
        caller.check(Action::UseSecret)?;
        self.token(id).await
    }

    /// `fresh_token` for the domain's own use (applying an authorization).
    pub(crate) async fn token(&self, id: &Id) -> Result<FreshToken, Error> {
        let cached = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let now = self.clock.now();
        let auth = match cached {
            Some(c) if now - c.at < CACHE_TTL => match c.view {
                // The hot path: no database read, no decryption, no write.
                Some(view)
                    if oauth2::freshness(c.expires_at, now, self.settings.refresh_margin, true) == Freshness::Fresh =>
                {
                    return Ok(view)
                }
                _ => Record::clone(&c.record),
            },
            _ => {
                let record = self.records.stored(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?;
                self.remember(&record);
                record
            }
        };
        self.serve_fresh(auth).await
    }

    pub(crate) fn remember(&self, record: &Record) {
        let usable =
            record.authorization_type() == Some(AuthorizationType::OAuth2) && record.status() == Status::Authorized;
        let view = usable.then(|| self.token_view(record).ok()).flatten();
        let expires_at = record.expires_at();
        let now = self.clock.now();
        let entry = Cached { at: now, record: Arc::new(record.clone()), view, expires_at };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, c| now - c.at < CACHE_TTL);
        }
        cache.insert(record.id.clone(), entry);
    }

    pub(crate) fn forget(&self, id: &Id) {
        self.cache.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    pub async fn fresh_token_by_key(&self, caller: &Caller, namespace: &str, name: &str) -> Result<FreshToken, Error> {
        caller.check(Action::UseSecret)?;
        let key = NaturalKey::Namespaced { namespace: namespace.trim().to_owned(), name: name.trim().to_owned() };
        let auth = self
            .records
            .stored_by_key(Kind::Authorization, &key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no authorization {namespace} | {name}")))?;
        self.serve_fresh(auth).await
    }

    pub(crate) async fn serve_fresh(&self, auth: Record) -> Result<FreshToken, Error> {
        if auth.authorization_type() != Some(AuthorizationType::OAuth2) {
            return Err(state_error(
                ErrorCode::NotSupported,
                format!(
                    "a {} authorization has no bearer token to hand out; use sign or a connection's proxy",
                    auth.rtype
                ),
            ));
        }
        check_usable(&auth)?;
        let now = self.clock.now();
        let expires_at = auth.expires_at();
        // Most calls end here: no write, no outgoing request.
        if oauth2::freshness(expires_at, now, self.settings.refresh_margin, true) == Freshness::Fresh {
            return self.token_view(&auth);
        }
        let parts = self.parts(&auth.id).await?;
        match oauth2::freshness(expires_at, now, self.settings.refresh_margin, can_refresh(&parts)) {
            Freshness::Fresh | Freshness::Expiring => self.token_view(&auth),
            Freshness::Refresh => match self.refreshed(&auth.id, Some(auth.updated_at)).await {
                Ok(record) => self.token_view(&record),
                // The provider is away but the token still works: hand it out.
                Err(Error::Unavailable(_)) if expires_at.is_some_and(|t| t > now) => self.token_view(&auth),
                Err(e) => Err(e),
            },
            Freshness::Expired => {
                let mut auth = auth;
                set_status(&mut auth, Status::Expired);
                auth.updated_at = now;
                self.save(&auth).await?;
                self.notify(
                    &auth.id,
                    NotificationLevel::Warning,
                    format!(
                        "the access token of {} expired and the provider cannot refresh it; authorize again",
                        auth.name
                    ),
                )
                .await;
                Err(state_error(
                    ErrorCode::TokenExpired,
                    "the access token expired and cannot be refreshed; authorize again",
                ))
            }
        }
    }

    pub(crate) fn token_view(&self, auth: &Record) -> Result<FreshToken, Error> {
        let token = self.open_secret(auth, "access_token")?.ok_or_else(|| {
            state_error(ErrorCode::NotAuthorized, "the authorization holds no access token; authorize it first")
        })?;
        let token_type = match auth.text("token_type") {
            t if t.is_empty() || t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
            t => t.to_owned(),
        };
        Ok(FreshToken::new(token, token_type, auth.data.get("expires_at").cloned().unwrap_or(Value::Null)))
    }

    pub(crate) fn is_fresh(&self, auth: &Record) -> bool {
        let expires_at = auth.expires_at();
        auth.status() == Status::Authorized
            && oauth2::freshness(expires_at, self.clock.now(), self.settings.refresh_margin, true) == Freshness::Fresh
    }
}
