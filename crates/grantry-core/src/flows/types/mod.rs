//! One module per authorization type (docs/concepts.md §4, §5). Each says
//! how its type is authorized, what a callback does, what it adds to a
//! request, which variables it gives connection templates, and how it is
//! cancelled. `of` is the one place that maps a type to its module: a new
//! type is a new module and a new arm there, and the compiler lists the
//! other exhaustive matches on `AuthorizationType`.

mod api_key;
mod basic;
mod generic;
pub(crate) mod oauth1;
mod oauth2;

use async_trait::async_trait;

use super::apply::{Applied, Outgoing};
use super::{state_error, Authorized, CallbackOutcome, Flows, Start};
use crate::oauth2::Vars;
use crate::ports::PendingState;
use crate::{AuthorizationType, Error, ErrorCode, Record};

#[async_trait]
pub(crate) trait AuthFlow: Send + Sync {
    /// Starts a grant: a redirect for the browser, or the record when no
    /// browser is needed. Types whose credentials are typed in have no flow.
    async fn authorize(&self, _flows: &Flows, auth: Record, _start: &Start<'_>) -> Result<Authorized, Error> {
        Err(state_error(
            ErrorCode::NotSupported,
            format!("a {} authorization is authorized by setting its credentials, not by a flow", auth.rtype),
        ))
    }

    /// The provider's redirect back, with the pending request it answers.
    async fn callback(
        &self,
        _flows: &Flows,
        auth: Record,
        _pending: &PendingState,
        _params: &[(String, String)],
        _outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        Err(state_error(ErrorCode::NotSupported, format!("a {} authorization has no client", auth.rtype)))
    }

    /// Ends the grant: revokes where the protocol can, forgets the tokens.
    async fn cancel(&self, _flows: &Flows, auth: Record) -> Result<(), Error> {
        Err(state_error(
            ErrorCode::NotSupported,
            format!("this works on oauth2 authorizations; {} is {}", auth.name, auth.rtype),
        ))
    }

    /// What to add to `request` so that the remote API accepts it. The
    /// authorization is usable (checked by the caller).
    async fn apply(&self, flows: &Flows, auth: &Record, request: &Outgoing<'_>) -> Result<Applied, Error>;

    /// The variables a connection's templates see when the connection handles
    /// the authorization itself (`authorization_handler`).
    async fn variables(&self, flows: &Flows, auth: &Record, vars: &mut Vars) -> Result<(), Error>;

    /// The query parameter of the authorize URL that carries Grantry's callback URL.
    fn callback_key<'a>(&self, _auth: &'a Record) -> &'a str {
        "redirect_uri"
    }
}

/// The module of an authorization type.
pub(crate) fn of(t: AuthorizationType) -> &'static dyn AuthFlow {
    match t {
        AuthorizationType::OAuth2 => &oauth2::OAuth2,
        AuthorizationType::OAuth1 => &oauth1::OAuth1,
        AuthorizationType::Basic => &basic::Basic,
        AuthorizationType::ApiKey => &api_key::ApiKey,
        AuthorizationType::Generic => &generic::Generic,
    }
}

/// The module of a stored authorization.
pub(crate) fn of_record(auth: &Record) -> Result<&'static dyn AuthFlow, Error> {
    auth.authorization_type().map(of).ok_or_else(|| Error::Internal(format!("{} is not an authorization", auth.id)))
}
