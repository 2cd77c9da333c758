//! OAuth 2.0 as pure functions (docs/concepts.md §4): the authorize URL, token requests
//! for every grant, parsing of token answers, and the refresh decision. No I/O
//! here: the flow service sends what these build through the `HttpSend` port.

mod answers;
mod requests;
mod vars;

pub use answers::*;
pub use requests::*;
pub use vars::*;

use std::fmt;

use time::OffsetDateTime;

use crate::ports::{HttpMethod, HttpRequest, HttpResponse};
use crate::template::{self, HostParameter, Position, RenderError};
use crate::{AuthMethod, BodyFormat, GrantType, TokenMethod};

/// A flow that cannot go on, with a reason fit for `last_error` (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    Template(String),
    #[error("{0}")]
    Config(String),
    /// A template went over the render budget.
    #[error("{0}")]
    TooExpensive(String),
}

impl FlowError {
    fn from_render(field: &str, e: RenderError) -> FlowError {
        match e {
            RenderError::TooExpensive(_) => FlowError::TooExpensive(format!("{field} {e}")),
            RenderError::Invalid(_) => FlowError::Template(format!("{field} {e}")),
        }
    }
}

/// Parameters Grantry itself sets in authorize and token requests: an
/// authorization's `parameters` and a client's `request_token_parameters`
/// may not set them (docs/concepts.md §3.5).
pub const RESERVED_PARAMETERS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "code",
    "code_verifier",
    "grant_type",
    "client_secret",
    "refresh_token",
];

/// Whether Grantry owns the parameter `key` (`client_assertion*` included).
pub fn is_reserved(key: &str) -> bool {
    RESERVED_PARAMETERS.contains(&key) || key.starts_with("client_assertion")
}

/// The client credentials as the provider knows them.
pub struct ClientAuth<'a> {
    pub method: AuthMethod,
    pub identifier: &'a str,
    pub secret: &'a str,
}

impl fmt::Debug for ClientAuth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth").field("method", &self.method).finish_non_exhaustive()
    }
}

/// What the provider fields of a flow say, read once from the record.
pub struct ProviderSettings<'a> {
    pub authorization_endpoint: &'a str,
    pub token_endpoint: &'a str,
    pub token_method: HttpMethod,
    pub scope_separator: &'a str,
    pub pkce: bool,
    /// The variables the endpoints may put into their host.
    pub hosts: Vec<HostParameter>,
}

/// What to do with a stored token when someone asks for a fresh one.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it as it is.
    Fresh,
    /// Refresh first (it expires within the margin, and refreshing is possible).
    Refresh,
    /// Within the margin but cannot be refreshed: still usable until it expires.
    Expiring,
    /// Expired and cannot be refreshed.
    Expired,
}

pub fn freshness(
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    margin: time::Duration,
    can_refresh: bool,
) -> Freshness {
    match expires_at {
        None => Freshness::Fresh,
        Some(at) if at - now > margin => Freshness::Fresh,
        Some(_) if can_refresh => Freshness::Refresh,
        Some(at) if at > now => Freshness::Expiring,
        Some(_) => Freshness::Expired,
    }
}

#[cfg(test)]
mod tests;
