//! The one outgoing HTTP client: a timeout, no redirects, a 1 MiB answer cap,
//! and a refusal to call link-local / cloud-metadata addresses (and, when
//! configured, private ones), checked on the addresses DNS gives.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::oauth2::{HttpRequest, HttpResponse, HttpSend, SendError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The largest answer read from a remote server.
pub const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct AddressPolicy {
    pub deny_private: bool,
}

impl AddressPolicy {
    /// Whether Grantry may connect to `ip`.
    pub fn allows(self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        // Link-local ranges hold the cloud metadata services (169.254.169.254, fd00:ec2::254).
        let metadata = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => {
                v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        };
        if metadata {
            return false;
        }
        if !self.deny_private {
            return true;
        }
        match ip {
            IpAddr::V4(v4) => {
                !(v4.is_private()
                    || v4.is_loopback()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
                    || v4.octets()[0] == 0)
            }
            IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00),
        }
    }
}

/// An error the resolver returns when every address of a host is forbidden.
#[derive(Debug)]
struct Forbidden(String);

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Forbidden {}

struct CheckedResolver {
    policy: AddressPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() && !found.is_empty() {
                return Err(Box::new(Forbidden(format!("{host} resolves only to addresses Grantry may not call"))) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

pub struct Outbound {
    client: reqwest::Client,
    policy: AddressPolicy,
}

impl Outbound {
    pub fn new(timeout: Duration, policy: AddressPolicy) -> Result<Outbound, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver { policy }))
            .user_agent(concat!("Grantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the outgoing HTTP client could not be built: {e}"))?;
        Ok(Outbound { client, policy })
    }
}

fn forbidden_in(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<Forbidden>() {
            return Some(f.0.clone());
        }
        source = s.source();
    }
    None
}

impl Outbound {
    /// Sends a request and returns as soon as the answer's head arrives; the
    /// body is the caller's to read (the proxy streams it).
    pub async fn start(&self, request: HttpRequest) -> Result<reqwest::Response, SendError> {
        let url = reqwest::Url::parse(&request.url).map_err(|e| SendError::Refused(format!("not a URL: {e}")))?;
        let host = url.host_str().unwrap_or("").trim_matches(|c| c == '[' || c == ']');
        // Literal addresses skip DNS, so they are checked here.
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !self.policy.allows(ip) {
                return Err(SendError::Refused(format!("{host} is an address Grantry may not call")));
            }
        }
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut builder = self.client.request(method, url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        builder.send().await.map_err(|e| match forbidden_in(&e) {
            Some(message) => SendError::Refused(message),
            None if e.is_timeout() => SendError::Transient("the request timed out".into()),
            None => SendError::Transient(format!("the request failed: {}", without_url(&e))),
        })
    }
}

#[async_trait]
impl HttpSend for Outbound {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SendError> {
        let mut response = self.start(request).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER {
                        return Err(SendError::Refused("the answer is larger than 1 MiB".into()));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(SendError::Transient("the answer timed out".into())),
                Err(e) => {
                    return Err(SendError::Transient(format!("the answer could not be read: {}", without_url(&e))))
                }
            }
        }
        Ok(HttpResponse { status, content_type, body })
    }
}

/// reqwest's messages include the URL, whose query may hold a secret (GET token requests).
fn without_url(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    if let Some(url) = e.url() {
        message = message.replace(url.as_str(), "the URL");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn metadata_addresses_are_always_refused_and_private_ones_on_request() {
        let open = AddressPolicy { deny_private: false };
        let closed = AddressPolicy { deny_private: true };
        for forbidden in ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "fe80::1"] {
            assert!(!open.allows(ip(forbidden)), "{forbidden}");
            assert!(!closed.allows(ip(forbidden)), "{forbidden}");
        }
        for private in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4", "::1", "fd12::1"] {
            assert!(open.allows(ip(private)), "{private}");
            assert!(!closed.allows(ip(private)), "{private}");
        }
        assert!(closed.allows(ip("93.184.216.34")));
        assert!(closed.allows(ip("2606:4700::1111")));
    }
}
