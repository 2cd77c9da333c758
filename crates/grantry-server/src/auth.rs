//! API access: bearer tokens checked against the stored hashes, the role each
//! route needs (docs/concepts.md §8.1), and the throttle on failed
//! attempts per client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use grantry_core::access::Action;
use grantry_core::{Error, Kind};

use crate::error::ApiError;
use crate::outbound::Network;
use crate::AppState;

/// The action of an API route, from its pattern and the request's path
/// (the `{kind}` segment). A route missing here needs the admin role.
pub fn api_action(method: &Method, route: &str, path: &str) -> Action {
    let kind = path.split('/').nth(3).and_then(|segment| Kind::parse(&decoded(segment)));
    // The router decodes the segment the handler sees, so the role is judged on
    // the decoded kind; a kind that is none stays admin-only.
    let read = || kind.map(Action::Read).unwrap_or(Action::ManageTokens);
    let reads = method == Method::GET || method == Method::HEAD;
    match route {
        "/api/v1/{kind}" | "/api/v1/{kind}/{id}" if reads => read(),
        "/api/v1/{kind}" | "/api/v1/{kind}/{id}" | "/api/v1/{kind}/delete" | "/api/v1/{kind}/import" => Action::Write,
        "/api/v1/{kind}/export" => Action::Export,
        "/api/v1/{kind}/schema" => Action::ReadSchema,
        "/api/v1/authorizations/{id}/authorize"
        | "/api/v1/authorizations/{id}/refresh"
        | "/api/v1/authorizations/{id}/cancel" => Action::Flow,
        "/api/v1/authorizations/{id}/token"
        | "/api/v1/authorizations/by-key/{namespace}/{name}/token"
        | "/api/v1/authorizations/{id}/sign"
        | "/api/v1/connections/{id}/proxy"
        | "/api/v1/connections/{id}/proxy/{*path}" => Action::UseSecret,
        "/api/v1/notifications" => Action::ReadNotifications,
        _ => Action::ManageTokens,
    }
}

/// A path segment, percent-decoded as the router decodes it.
pub fn decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The client address of a request: the socket's peer, or, when the peer is
/// a proxy the operator trusts (`GRANTRY_TRUSTED_PROXIES`), the nearest
/// address in `X-Forwarded-For` that is not one of those proxies. Without
/// trusted proxies the header is ignored, so a caller cannot pick its own.
pub fn client_address(req: &Request, trusted: &[Network]) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // From the nearest hop outwards: the first address no trusted proxy
    // stands for is the client. An entry that is not an address (`unknown`)
    // ends the walk at the last trusted hop, so a caller cannot skip past it.
    let mut client = peer;
    for entry in entries.into_iter().rev() {
        let parsed = entry
            .parse::<IpAddr>()
            .ok()
            .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
            .or_else(|| entry.trim_start_matches('[').split(']').next().and_then(|a| a.parse().ok()));
        match parsed {
            Some(ip) if is_trusted(ip) => client = ip,
            Some(ip) => return ip,
            None => return client,
        }
    }
    client
}

pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let address = client_address(&req, &state.trusted_proxies);
    state.bearer_failures.check(address, "API requests")?;
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        state.bearer_failures.fail(address);
        return Err(Error::Unauthorized(
            "this endpoint needs an API token: send `Authorization: Bearer <token>`".into(),
        )
        .into());
    };
    let Some(caller) = state.api_tokens.authenticate(token).await? else {
        state.bearer_failures.fail(address);
        return Err(Error::Unauthorized(
            "the API token is not valid (unknown, revoked or expired); mint one with `grantry token create --name NAME`"
                .into(),
        )
        .into());
    };
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let action = api_action(req.method(), &route, req.uri().path());
    caller.check(action)?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Failed attempts per client address: after `LIMIT` failures within
/// `WINDOW`, every attempt of that kind from that address is refused until the
/// window has passed. Sign-in and bearer tokens each have their own.
#[derive(Default)]
pub struct Throttle {
    failures: RwLock<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    pub const LIMIT: u32 = 10;
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Addresses remembered at most, so that a flood of addresses cannot fill memory.
    const MAX_ADDRESSES: usize = 100_000;

    /// The key of an address: an IPv6 client usually holds a whole /64.
    fn key(address: IpAddr) -> IpAddr {
        match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }

    /// `Err` with the seconds to wait when `address` is throttled.
    pub fn check(&self, address: IpAddr, what: &str) -> Result<(), Error> {
        let address = Self::key(address);
        let failures = self.failures.read().unwrap_or_else(|p| p.into_inner());
        match failures.get(&address) {
            Some((start, count)) if *count >= Self::LIMIT && start.elapsed() < Self::WINDOW => {
                let retry_after = (Self::WINDOW - start.elapsed()).as_secs().max(1);
                Err(Error::TooManyRequests {
                    message: format!(
                        "too many failed attempts from this address; {what} are refused for {retry_after} more seconds"
                    ),
                    retry_after,
                })
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&self, address: IpAddr) {
        let address = Self::key(address);
        let mut failures = self.failures.write().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= Self::MAX_ADDRESSES {
            failures.retain(|_, (start, _)| start.elapsed() < Self::WINDOW);
        }
        if failures.len() >= Self::MAX_ADDRESSES {
            // Still full: keep the addresses that are shut out, forget the counting ones.
            failures.retain(|_, (_, count)| *count >= Self::LIMIT);
        }
        if failures.len() >= Self::MAX_ADDRESSES {
            failures.clear();
        }
        let entry = failures.entry(address).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_needs_the_action_of_its_kind() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(api_action(&get, "/api/v1/{kind}", "/api/v1/clients"), Action::Read(Kind::Client));
        assert_eq!(api_action(&post, "/api/v1/{kind}", "/api/v1/clients"), Action::Write);
        assert_eq!(api_action(&Method::DELETE, "/api/v1/{kind}/{id}", "/api/v1/clients/x"), Action::Write);
        assert_eq!(api_action(&post, "/api/v1/{kind}/export", "/api/v1/clients/export"), Action::Export);
        assert_eq!(
            api_action(&get, "/api/v1/authorizations/{id}/token", "/api/v1/authorizations/x/token"),
            Action::UseSecret
        );
        assert_eq!(api_action(&post, "/api/v1/authorizations/{id}/cancel", "/x"), Action::Flow);
        assert_eq!(api_action(&get, "/api/v1/api-tokens", "/api/v1/api-tokens"), Action::ManageTokens);
        assert_eq!(api_action(&get, "/something/new", "/something/new"), Action::ManageTokens);
        // An encoded kind is the kind it decodes to.
        assert_eq!(api_action(&get, "/api/v1/{kind}", "/api/v1/%63lients"), Action::Read(Kind::Client));
        assert_eq!(api_action(&get, "/api/v1/{kind}/{id}", "/api/v1/nothing/x"), Action::ManageTokens);
        assert_eq!(api_action(&Method::HEAD, "/api/v1/{kind}", "/api/v1/clients"), Action::Read(Kind::Client));
    }

    #[test]
    fn ten_failures_close_the_door_for_that_address_only() {
        let throttle = Throttle::default();
        let (a, b) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        for _ in 0..Throttle::LIMIT {
            assert!(throttle.check(a, "x").is_ok());
            throttle.fail(a);
        }
        assert!(matches!(throttle.check(a, "x"), Err(Error::TooManyRequests { retry_after, .. }) if retry_after > 800));
        assert!(throttle.check(b, "x").is_ok());
    }
}
