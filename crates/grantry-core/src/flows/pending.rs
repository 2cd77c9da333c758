//! Pending authorize requests (docs/concepts.md §4.1–4.2): the state kept
//! between authorize and callback, where the browser may return to, and the
//! checks a callback must pass before anything is exchanged.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::Digest as _;

use super::exchange::Failure;
use super::{label_of, CallbackOutcome, Flows, Start};
use crate::ports::PendingState;
use crate::{Error, Id, NotificationLevel, Record, Status};

/// How long an authorize request's state is good for.
pub(crate) const STATE_TTL: time::Duration = time::Duration::minutes(10);

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn hash_state(state: &str) -> String {
    sha2::Sha256::digest(state.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Flows {
    /// Where the browser goes back to must be Grantry's own origin or one
    /// the operator listed, over https (http only on loopback): docs/concepts.md §4.1.
    pub(crate) fn check_return_to(&self, url: &str) -> Result<(), Error> {
        let parsed = url::Url::parse(url).ok();
        let loopback = |u: &url::Url| match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        let secure = parsed.as_ref().is_some_and(|u| u.scheme() == "https" || (u.scheme() == "http" && loopback(u)));
        let origin = parsed.as_ref().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let own = url::Url::parse(&self.settings.public_url).map(|u| u.origin().ascii_serialization()).ok();
        // Grantry's own origin is whatever the operator made the public URL.
        if own.as_deref() == Some(origin.as_str()) {
            return Ok(());
        }
        let listed =
            self.settings.return_to_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&origin));
        if secure && listed {
            return Ok(());
        }
        Err(Error::field(
            "return_to",
            "must be an https URL (http only on loopback) on Grantry's own origin or an origin listed in \
             GRANTRY_RETURN_TO_ORIGINS",
        ))
    }

    /// Keeps a pending authorize request: found again by the hash of its
    /// state, single use, expiring after `STATE_TTL`; `binding` ties it to the
    /// browser that started it.
    pub(crate) async fn keep_pending(
        &self,
        state: &str,
        authorization_id: &Id,
        secret: Option<&str>,
        start: &Start<'_>,
    ) -> Result<(), Error> {
        let state_hash = hash_state(state);
        let code_verifier = match secret {
            Some(v) => Some(self.sealer.seal(v, &format!("state/{state_hash}"))?),
            None => None,
        };
        let now = self.clock.now();
        self.store
            .insert_state(&PendingState {
                state_hash,
                authorization_id: authorization_id.clone(),
                code_verifier,
                return_to: start.return_to.map(str::to_owned),
                binding_hash: start.binding.map(hash_state),
                created_at: now,
                expires_at: now + STATE_TTL,
            })
            .await?;
        Ok(())
    }

    /// A callback that gives no new grant (`error=`, no code, a refused
    /// exchange). An authorization that is authorized keeps its grant: whoever
    /// holds the state of a new request cannot undo it (docs/concepts.md §4.2).
    pub(crate) async fn callback_failed(
        &self,
        auth: &mut Record,
        failure: Failure,
        status: Status,
        mut outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        if auth.status() == Status::Authorized {
            let message = self.scrubber(&[&*auth]).await.scrub(&failure.message());
            self.notify(
                &auth.id,
                NotificationLevel::Warning,
                format!(
                    "a new authorization request for {} was refused ({message}); it stays authorized with its \
                     current grant",
                    label_of(auth)
                ),
            )
            .await;
            outcome.error = Some(message);
            return Ok(outcome);
        }
        outcome.error = Some(self.record_failure(auth, &failure, status).await?);
        Ok(outcome)
    }

    /// The pending request a callback answers, taken (a state works once):
    /// unknown, used, expired or started in another browser session are errors
    /// that change nothing. `binding` is the flow cookie the browser sent.
    pub(crate) async fn take_pending(
        &self,
        params: &[(String, String)],
        binding: Option<&str>,
    ) -> Result<PendingState, Error> {
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        // OAuth 1.0a providers send back the request token instead of a state.
        // (and Twitter-style refusals only `denied=<request token>`).
        let state = get("state")
            .or_else(|| get("oauth_token"))
            .or_else(|| get("denied"))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::BadRequest("this callback has no state; start again from Grantry's Authorize".into())
            })?;
        let state_hash = hash_state(state);
        let pending = self.store.take_state(&state_hash).await?.ok_or_else(|| {
            Error::BadRequest(
                "this authorization request is unknown or was already used; start again from Authorize".into(),
            )
        })?;
        if pending.expires_at < self.clock.now() {
            return Err(Error::BadRequest(
                "this authorization request expired (after 10 minutes); start again from Authorize".into(),
            ));
        }
        if let Some(bound) = &pending.binding_hash {
            if binding.map(hash_state).as_deref() != Some(bound.as_str()) {
                return Err(Error::BadRequest(
                    "this authorization was started in another browser session; start again from Authorize in \
                     this browser"
                        .into(),
                ));
            }
        }
        Ok(pending)
    }
}
