//! The flows on stored authorizations (docs/concepts.md §4, §5, §7):
//! authorize and callback, fresh tokens with single-flight refresh, cancel,
//! applying an authorization to a request, and the proxy. `Flows` holds the
//! entry points; each authorization type's own steps live in `types`.

mod apply;
mod exchange;
mod fresh;
mod pending;
mod proxy;
mod refresh;
mod types;

pub use apply::{Applied, SignInput};
use fresh::Cached;
pub use fresh::FreshToken;
pub use proxy::{is_forwarded_header, Prepared, ProxyInput};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::access::{Action, Caller};
use crate::notifications::Notifications;
use crate::oauth2::{self, ProviderSettings, Vars};
use crate::ports::{seal_context, Clock, HttpMethod, HttpSend, Sealer, Store};
use crate::scrub::Scrubber;
use crate::service::{label, RecordView, Records};
use crate::template::{HostParameter, Position};
use crate::{AuthorizationType, Error, ErrorCode, Id, Kind, NotificationLevel, Pkce, Record, Status};

pub struct FlowSettings {
    /// Grantry's public URL; the callback is `<public_url>/oauth/callback`.
    pub public_url: String,
    /// Refresh tokens that expire within this margin.
    pub refresh_margin: time::Duration,
    /// Waits between attempts when the provider is unreachable or answers 5xx.
    pub retry_backoff: Vec<Duration>,
    /// Origins (`https://app.example`) that `return_to` may lead to, besides the public URL's.
    pub return_to_origins: Vec<String>,
}

/// What "Authorize" leads to.
pub enum Authorized {
    /// Send the browser here.
    Redirect(String),
    /// No browser needed (client credentials): the record as it is now.
    Record(RecordView),
}

/// Where the callback sends the browser, and what to tell it.
pub struct CallbackOutcome {
    pub authorization_id: Id,
    pub authorized: bool,
    pub error: Option<String>,
    pub return_to: Option<String>,
}

/// The authorization, its client and the client's provider.
pub(crate) struct Parts {
    pub(crate) auth: Record,
    pub(crate) client: Record,
    pub(crate) provider: Record,
    /// The authorization's scopes, in their order.
    pub(crate) scopes: Vec<Record>,
}

pub struct Flows {
    pub(crate) records: Arc<Records>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sealer: Arc<dyn Sealer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: Arc<dyn HttpSend>,
    pub(crate) settings: FlowSettings,
    pub(crate) notifications: Arc<Notifications>,
    /// One refresh at a time per authorization within this process; the lease
    /// in the store does the same across processes.
    refreshing: Mutex<HashMap<Id, Arc<refresh::Flight>>>,
    /// Authorizations recently read for their token, so that the hot path of
    /// fresh tokens needs no database round trip. Every write here replaces
    /// the entry; a write by another process is seen within `CACHE_TTL`.
    cache: std::sync::RwLock<HashMap<Id, Cached>>,
}

pub(crate) fn state_error(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::State { code, message: message.into() }
}

impl Flows {
    pub fn new(
        records: Arc<Records>,
        sealer: Arc<dyn Sealer>,
        clock: Arc<dyn Clock>,
        http: Arc<dyn HttpSend>,
        settings: FlowSettings,
    ) -> Flows {
        let store = records.store().clone();
        Flows {
            records,
            notifications: Arc::new(Notifications::new(store.clone(), clock.clone())),
            store,
            sealer,
            clock,
            http,
            settings,
            refreshing: Mutex::new(HashMap::new()),
            cache: Default::default(),
        }
    }

    pub fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.settings.public_url)
    }

    // ---- entry points: each dispatches to its type's module ----------------

    /// Starts a grant, the way the authorization's type does it.
    pub async fn authorize(&self, caller: &Caller, id: &Id, start: &Start<'_>) -> Result<Authorized, Error> {
        caller.check(Action::Flow)?;
        if let Some(url) = start.return_to {
            self.check_return_to(url)?;
        }
        let auth = self.authorization(id).await?;
        types::of_record(&auth)?.authorize(self, auth, start).await
    }

    /// Handles the provider's redirect back. It has no `Caller`: the browser
    /// of the resource owner is authenticated by the state it carries, which
    /// works once. An unknown, used or expired state is an error and changes
    /// nothing. `binding` is the flow cookie the
    /// browser sent, if any: a request started from the UI completes only in
    /// the browser session that started it.
    pub async fn callback(&self, params: &[(String, String)], binding: Option<&str>) -> Result<CallbackOutcome, Error> {
        let pending = self.take_pending(params, binding).await?;
        let outcome = CallbackOutcome {
            authorization_id: pending.authorization_id.clone(),
            authorized: false,
            error: None,
            return_to: pending.return_to.clone(),
        };
        let auth = self.authorization(&pending.authorization_id).await?;
        types::of_record(&auth)?.callback(self, auth, &pending, params, outcome).await
    }

    /// Ends a grant and answers the authorization as it is afterwards.
    pub async fn cancel(&self, caller: &Caller, id: &Id) -> Result<RecordView, Error> {
        caller.check(Action::Flow)?;
        self.cancel_now(id).await
    }

    async fn cancel_now(&self, id: &Id) -> Result<RecordView, Error> {
        let auth = self.authorization(id).await?;
        types::of_record(&auth)?.cancel(self, auth).await?;
        self.records.view_of(Kind::Authorization, id).await
    }

    // ---- fresh token, refresh ---------------------------------------------

    /// Forgets what a grant gave an authorization: every field its type has
    /// that Grantry sets (tokens, expiry, granted scope, when and why), by the
    /// field table; it is unauthorized afterwards.
    pub(crate) async fn forget_grant(&self, mut auth: Record) -> Result<(), Error> {
        let given =
            auth.kind.fields_of(auth.rtype).filter(|f| f.read_only && !matches!(f.name, "status" | "authorized"));
        for field in given {
            auth.secrets.remove(field.name);
            auth.data.remove(field.name);
        }
        set_status(&mut auth, Status::Unauthorized);
        auth.updated_at = self.clock.now();
        self.save(&auth).await
    }

    /// Writes an authorization changed by a flow.
    pub(crate) async fn save(&self, auth: &Record) -> Result<(), Error> {
        self.forget(&auth.id);
        self.records.write(auth).await?;
        self.forget(&auth.id);
        Ok(())
    }

    /// Deletes records; authorizations are cancelled first (docs/concepts.md §4.6).
    pub async fn delete(&self, caller: &Caller, kind: Kind, id: &Id) -> Result<(), Error> {
        caller.check(Action::Write)?;
        self.forget(id);
        if kind == Kind::Authorization
            && self
                .store
                .get(kind, id)
                .await?
                .is_some_and(|a| a.authorization_type() == Some(AuthorizationType::OAuth2))
        {
            self.cancel_now(id).await?;
        }
        self.records.delete(caller, kind, id).await
    }

    pub async fn delete_many(
        &self,
        caller: &Caller,
        kind: Kind,
        selection: &crate::service::Selection,
    ) -> Result<u64, Error> {
        caller.check(Action::Write)?;
        if kind == Kind::Authorization {
            self.cache.write().unwrap_or_else(|p| p.into_inner()).clear();
            for auth in self.records.select_records(kind, selection).await? {
                // Anything but a stored `unauthorized` may hold tokens to revoke.
                if auth.authorization_type() == Some(AuthorizationType::OAuth2)
                    && Status::parse(auth.text("status")) != Some(Status::Unauthorized)
                {
                    self.cancel_now(&auth.id).await?;
                }
            }
        }
        self.records.delete_many(caller, kind, selection).await
    }

    pub(crate) async fn notify(&self, id: &Id, level: NotificationLevel, message: String) {
        self.notifications.notify(id, level, message).await;
    }

    // ---- helpers ------------------------------------------------------------

    pub fn notifications(&self) -> &Notifications {
        &self.notifications
    }

    /// A stored authorization, or `not_found`.
    pub(crate) async fn authorization(&self, id: &Id) -> Result<Record, Error> {
        self.records.stored(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))
    }

    /// The parts of an oauth2 authorization (refresh works on no other type).
    pub(crate) async fn parts(&self, id: &Id) -> Result<Parts, Error> {
        let auth = self.authorization(id).await?;
        if auth.authorization_type() != Some(AuthorizationType::OAuth2) {
            return Err(state_error(
                ErrorCode::NotSupported,
                format!("this works on oauth2 authorizations; {} is {}", auth.name, auth.rtype),
            ));
        }
        self.load_parts(auth).await
    }

    /// The client, provider and scopes of an authorization that has a client.
    pub(crate) async fn load_parts(&self, auth: Record) -> Result<Parts, Error> {
        let client_id = auth.reference("client").cloned().ok_or_else(|| {
            state_error(ErrorCode::NotSupported, format!("a {} authorization has no client", auth.rtype))
        })?;
        let client = self.records.stored(Kind::Client, &client_id).await?.ok_or_else(|| not_found(&client_id))?;
        let provider_id =
            client.key_parent().cloned().ok_or_else(|| Error::Internal("a client without a provider".into()))?;
        let provider =
            self.records.stored(Kind::Provider, &provider_id).await?.ok_or_else(|| not_found(&provider_id))?;
        let scope_ids: Vec<Id> = auth.refs.get("scopes").cloned().unwrap_or_default();
        let mut found: HashMap<Id, Record> =
            self.records.stored_many(&scope_ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let scopes = scope_ids.iter().filter_map(|id| found.remove(id)).collect();
        Ok(Parts { auth, client, provider, scopes })
    }

    pub(crate) fn open_secret(&self, record: &Record, field: &str) -> Result<Option<SecretString>, Error> {
        match record.secrets.get(field) {
            Some(sealed) => Ok(Some(self.sealer.open(sealed, &seal_context(&record.id, field))?)),
            None => Ok(None),
        }
    }

    /// A secret the authorization must hold to be applied.
    pub(crate) fn required_secret(&self, record: &Record, field: &str) -> Result<SecretString, Error> {
        self.open_secret(record, field)?
            .ok_or_else(|| state_error(ErrorCode::NotAuthorized, format!("the authorization has no {field}")))
    }

    /// A secret, or the empty string when it is not set.
    pub(crate) fn optional_secret(&self, record: &Record, field: &str) -> Result<SecretString, Error> {
        Ok(self.open_secret(record, field)?.unwrap_or_else(|| SecretString::from(String::new())))
    }

    /// A client's identifier and secret (empty when unset); the identifier is required.
    pub(crate) fn client_credentials(&self, client: &Record) -> Result<(SecretString, SecretString), Error> {
        let identifier = self.open_secret(client, "identifier")?.ok_or_else(|| {
            state_error(
                ErrorCode::ClientIncomplete,
                format!("client {} has no identifier; set it before authorizing", client.name),
            )
        })?;
        Ok((identifier, self.optional_secret(client, "secret")?))
    }

    /// A scrubber of every secret the records hold, and of their clients'.
    pub(crate) async fn scrubber(&self, records: &[&Record]) -> Scrubber {
        let mut scrubber = Scrubber::default();
        let mut all: Vec<Record> = records.iter().map(|r| (*r).clone()).collect();
        let clients: Vec<Id> = records.iter().filter_map(|r| r.reference("client").cloned()).collect();
        if let Ok(found) = self.records.stored_many(&clients).await {
            all.extend(found);
        }
        for record in &all {
            for field in record.secrets.keys() {
                if let Ok(Some(value)) = self.open_secret(record, field) {
                    scrubber.add(value.expose_secret());
                    // Captured callback values are a JSON object of strings.
                    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(value.expose_secret()) {
                        for v in map.values().filter_map(Value::as_str) {
                            scrubber.add(v);
                        }
                    }
                }
            }
        }
        scrubber
    }

    /// The variables of docs/concepts.md §3.2, in their order of precedence.
    pub(crate) fn vars(&self, parts: &Parts, identifier: &SecretString, secret: &SecretString) -> Vars {
        let mut vars = Vars::default();
        vars.extend_pairs(parts.client.data.get("template_parameters").unwrap_or(&Value::Null));
        vars.set_secret("identifier", identifier.clone())
            .set_secret("secret", secret.clone())
            .set_time(self.clock.now());
        let callback_key = match types::of_record(&parts.auth) {
            Ok(module) => module.callback_key(&parts.auth),
            Err(_) => "redirect_uri",
        };
        vars.set(callback_key, self.callback_url());
        vars.extend_pairs(parts.auth.data.get("template_parameters").unwrap_or(&Value::Null));
        vars
    }

    pub(crate) fn scope(&self, parts: &Parts, vars: &Vars) -> Result<String, Error> {
        let names: Vec<String> = parts.scopes.iter().map(|s| s.name.clone()).collect();
        let separator = provider_settings(&parts.provider).scope_separator;
        oauth2::scope_string(&names, separator, vars).map_err(|e| Error::field("scopes", e.to_string()))
    }
}

/// How a flow was started: where the browser goes back to, and the flow
/// cookie of the browser session that started it (the UI sets one).
#[derive(Default)]
pub struct Start<'a> {
    pub return_to: Option<&'a str>,
    pub binding: Option<&'a str>,
}

/// An authorization's `parameters`, rendered for the authorize URL.
pub(crate) fn authorize_parameters(auth: &Record, vars: &Vars) -> Result<Vec<(String, String)>, Error> {
    let list = auth.data.get("parameters").unwrap_or(&Value::Null);
    oauth2::render_pairs("parameters", list, vars, Position::AuthorizeQuery)
        .map_err(|e| template_error(e, |m| Error::field("parameters", m)))
}

/// A template that did not render: over its budget is `template_too_expensive`,
/// anything else the error `otherwise` makes of the message.
pub(crate) fn template_error(e: oauth2::FlowError, otherwise: impl FnOnce(String) -> Error) -> Error {
    match e {
        oauth2::FlowError::TooExpensive(m) => state_error(ErrorCode::TemplateTooExpensive, m),
        other => otherwise(other.to_string()),
    }
}

/// A provider's templates that do not render, at a flow step that has no
/// failure to record.
pub(crate) fn misconfigured(e: oauth2::FlowError) -> Error {
    template_error(e, |m| state_error(ErrorCode::ProviderMisconfigured, m))
}

pub(crate) fn not_found(id: &Id) -> Error {
    Error::NotFound(format!("no authorization has id `{id}`"))
}

pub(crate) fn label_of(record: &Record) -> String {
    label(record, &HashMap::new())
}

pub(crate) fn set_status(auth: &mut Record, status: Status) {
    auth.data.insert("status".into(), json!(status.as_str()));
    auth.data.insert("authorized".into(), json!(status == Status::Authorized));
}

pub(crate) fn check_usable(auth: &Record) -> Result<(), Error> {
    match auth.status() {
        Status::Authorized => Ok(()),
        Status::Failed => {
            let why =
                auth.data.get("last_error").and_then(|e| e.get("error")).and_then(Value::as_str).unwrap_or("an error");
            Err(state_error(
                ErrorCode::AuthorizationFailed,
                format!("the authorization failed ({why}); the resource owner must authorize again"),
            ))
        }
        Status::Expired => Err(state_error(
            ErrorCode::TokenExpired,
            "the access token expired and cannot be refreshed; authorize again",
        )),
        Status::Unauthorized => Err(state_error(
            ErrorCode::NotAuthorized,
            "the authorization has not been authorized yet; run Authorize first",
        )),
    }
}

pub(crate) fn provider_settings(provider: &Record) -> ProviderSettings<'_> {
    ProviderSettings {
        authorization_endpoint: provider.text("authorization_endpoint"),
        token_endpoint: provider.text("token_endpoint"),
        token_method: HttpMethod::from(provider.token_method()),
        scope_separator: provider.data.get("scope_separator").and_then(Value::as_str).unwrap_or(" "),
        pkce: match provider.pkce() {
            Pkce::Auto | Pkce::S256 => true,
            Pkce::Off => false,
        },
        hosts: HostParameter::list(provider.data.get("host_parameters")),
    }
}

/// Handlers run on a multi-threaded runtime: every flow future must be Send.
#[cfg(test)]
#[allow(dead_code)]
fn flows_are_send(f: &Flows, c: &Caller, id: &Id, sel: &crate::service::Selection) {
    fn is_send<T: Send>(_: T) {}
    is_send(f.delete_many(c, Kind::Authorization, sel));
    is_send(f.cancel(c, id));
    is_send(f.fresh_token(c, id));
    is_send(f.callback(&[], None));
    is_send(f.authorize(c, id, &Start::default()));
}

/// The rendered authorization endpoint of an OAuth 1.0a or generic provider.
fn authorize_base(vars: &Vars, parts: &Parts, hosts: &[HostParameter]) -> Result<url::Url, Error> {
    let base = vars
        .render_url("authorization_endpoint", parts.provider.text("authorization_endpoint"), hosts)
        .map_err(misconfigured)?;
    url::Url::parse(&base)
        .map_err(|e| state_error(ErrorCode::ProviderMisconfigured, format!("authorization_endpoint: {e}")))
}

fn form_field(form: &[(String, String)], key: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests;
