//! Refresh with single flight (docs/concepts.md §4.4–4.5): one refresh per
//! authorization at a time in this process (a mutex) and across processes (a
//! lease in the store); callers that waited take the refresh they waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::exchange::Failure;
use super::fresh::can_refresh;
use super::proxy::{Prepared, ProxyInput};
use super::{check_usable, label_of, not_found, state_error, Flows, Parts};
use crate::access::{Action, Caller};
use crate::oauth2::ProviderError;
use crate::service::RecordView;
use crate::{Error, ErrorCode, GrantType, Id, Kind, NotificationLevel, Record, Status};

/// One authorization's refreshes in this process: whose turn it is, how many
/// have finished, and how the last one failed, if it did.
#[derive(Default)]
pub(crate) struct Flight {
    turn: tokio::sync::Mutex<Option<SharedFailure>>,
    finished: AtomicU64,
}

/// A refresh's failure, as each caller that waited for it gets it.
#[derive(Clone)]
pub(crate) enum SharedFailure {
    Unavailable(String),
    State(ErrorCode, String),
    Other(String),
}

impl SharedFailure {
    fn of(e: &Error) -> SharedFailure {
        match e {
            Error::Unavailable(m) => SharedFailure::Unavailable(m.clone()),
            Error::State { code, message } => SharedFailure::State(*code, message.clone()),
            other => SharedFailure::Other(other.to_string()),
        }
    }
    fn to_error(&self) -> Error {
        match self {
            SharedFailure::Unavailable(m) => Error::Unavailable(m.clone()),
            SharedFailure::State(code, m) => Error::State { code: *code, message: m.clone() },
            SharedFailure::Other(m) => Error::Internal(m.clone()),
        }
    }
}

/// How long one process may hold an authorization's refresh lease.
pub(crate) const LEASE: time::Duration = time::Duration::seconds(30);

impl Flows {
    /// Forces a refresh now.
    pub async fn refresh(&self, caller: &Caller, id: &Id) -> Result<RecordView, Error> {
        caller.check(Action::Flow)?;
        self.force_refresh(id).await
    }

    async fn force_refresh(&self, id: &Id) -> Result<RecordView, Error> {
        let parts = self.parts(id).await?;
        if !can_refresh(&parts) {
            return Err(state_error(
                ErrorCode::RefreshNotSupported,
                format!(
                    "provider {} has refresh_token_strategy none; set it to default or custom to refresh",
                    label_of(&parts.provider)
                ),
            ));
        }
        check_usable(&parts.auth)?;
        self.refreshed(id, None).await?;
        self.records.view_of(Kind::Authorization, id).await
    }

    pub(crate) fn lock_for(&self, id: &Id) -> Arc<Flight> {
        let mut map = self.refreshing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.retain(|_, flight| Arc::strong_count(flight) > 1);
        map.entry(id.clone()).or_default().clone()
    }

    /// Single flight: one refresh per authorization at a time, in this process
    /// (a mutex) and across processes (a lease in the store). A caller that saw
    /// the record at `seen` (its `updated_at`) and finds it changed by the time
    /// its turn comes takes the result of the refresh it waited for, even when
    /// the provider's tokens live shorter than the margin. `None` forces one.
    pub(crate) async fn refreshed(&self, id: &Id, seen: Option<OffsetDateTime>) -> Result<Record, Error> {
        let flight = self.lock_for(id);
        let ticket = flight.finished.load(Ordering::Acquire);
        let mut last = flight.turn.lock().await;
        // A refresh of this process ended while this caller waited: it shares
        // that outcome instead of starting a retry sequence of its own. (A
        // success is seen in the record below; a failure only here.)
        if let (Some(_), Some(failure)) = (seen, last.as_ref()) {
            if flight.finished.load(Ordering::Acquire) != ticket {
                return Err(failure.to_error());
            }
        }
        let result = self.refresh_under_lease(id, seen).await;
        *last = result.as_ref().err().map(SharedFailure::of);
        flight.finished.fetch_add(1, Ordering::AcqRel);
        result
    }

    async fn refresh_under_lease(&self, id: &Id, seen: Option<OffsetDateTime>) -> Result<Record, Error> {
        let holder = Id::generate().to_string();
        let deadline = self.clock.now() + LEASE;
        let done_meanwhile = |auth: &Record| {
            seen.is_some_and(|seen| {
                let refreshed = auth.updated_at != seen && auth.status() == Status::Authorized;
                refreshed || self.is_fresh(auth)
            })
        };
        loop {
            let parts = self.parts(id).await?;
            if done_meanwhile(&parts.auth) {
                return Ok(parts.auth);
            }
            let now = self.clock.now();
            if self.store.claim_refresh(id, &holder, now, now + LEASE).await? {
                // Read again under the lease: another process may have refreshed
                // (and rotated the refresh token) between the read above and the claim.
                let parts = self.parts(id).await?;
                let result = if done_meanwhile(&parts.auth) { Ok(parts.auth) } else { self.refresh_now(parts).await };
                let _ = self.store.release_refresh(id, &holder).await;
                return result;
            }
            if now > deadline {
                return Err(Error::Unavailable(
                    "another process has been refreshing this authorization for too long".into(),
                ));
            }
            self.clock.sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn refresh_now(&self, parts: Parts) -> Result<Record, Error> {
        let (identifier, secret) = self.client_credentials(&parts.client)?;
        let mut auth = parts.auth.clone();
        let result = if parts.auth.grant_type() == GrantType::ClientCredentials {
            let vars = self.vars(&parts, &identifier, &secret);
            self.client_credentials_grant(&parts, &identifier, &secret, &vars).await
        } else {
            let used = self.open_secret(&auth, "refresh_token")?;
            let Some(used) = used else {
                let failure = Failure::Provider(ProviderError::new(
                    0,
                    "no_refresh_token",
                    Some("the provider gave no refresh token; authorize again"),
                ));
                let message = self.record_failure(&mut auth, &failure, Status::Failed).await?;
                return Err(state_error(ErrorCode::AuthorizationFailed, message));
            };
            let first = self.refresh_call(&parts, &identifier, &secret, &used).await;
            match first {
                Err(Failure::Provider(ref e)) if e.is_invalid_grant() || matches!(e.status, 400 | 401) => {
                    // Another process may have rotated the refresh token meanwhile.
                    let current =
                        self.records.stored(Kind::Authorization, &auth.id).await?.ok_or_else(|| not_found(&auth.id))?;
                    match self.open_secret(&current, "refresh_token")? {
                        Some(newer) if newer.expose_secret() != used.expose_secret() => {
                            auth = current;
                            let again = Parts { auth: auth.clone(), ..parts };
                            self.refresh_call(&again, &identifier, &secret, &newer).await
                        }
                        _ => first,
                    }
                }
                other => other,
            }
        };
        let result = result.map_err(|failure| match failure.is_unusable_answer() {
            true => Failure::Transient(failure.message()),
            false => failure,
        });
        match result {
            Ok(tokens) => {
                self.store_tokens(&mut auth, tokens, false).await?;
                Ok(auth)
            }
            Err(Failure::TooExpensive(message)) => Err(state_error(ErrorCode::TemplateTooExpensive, message)),
            Err(Failure::Transient(message)) => {
                self.notify(
                    &auth.id,
                    NotificationLevel::Warning,
                    format!("refreshing {} failed for now ({message}); it stays as it was", auth.name),
                )
                .await;
                Err(Error::Unavailable(format!("the provider could not be reached to refresh the token: {message}")))
            }
            Err(failure) => {
                let message = self.record_failure(&mut auth, &failure, Status::Failed).await?;
                Err(state_error(ErrorCode::AuthorizationFailed,
                    format!("the provider refused to refresh the token ({message}); the resource owner must authorize again"),
                ))
            }
        }
    }

    /// The proxy's rule for an answer with `status` (docs/concepts.md §7.2):
    /// a 401 to an oauth2 authorization's token refreshes it, once, and gives
    /// the request to send once more with the new token. Any other answer,
    /// or a refresh that fails, is passed back as it is (`None`).
    pub async fn retry_proxied(
        &self,
        caller: &Caller,
        connection_id: &Id,
        input: &ProxyInput,
        refreshable: Option<&Id>,
        status: u16,
    ) -> Result<Option<Prepared>, Error> {
        let Some(auth) = refreshable.filter(|_| status == 401) else {
            return Ok(None);
        };
        if self.force_refresh(auth).await.is_err() {
            return Ok(None);
        }
        self.prepare_proxy(caller, connection_id, input).await.map(Some)
    }
}
