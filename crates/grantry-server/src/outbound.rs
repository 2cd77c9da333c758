//! The one outgoing HTTP client: a timeout, no redirects, no proxy from the
//! environment, a 1 MiB answer cap, and the address rules of docs/concepts.md §4.7
//! ("Secure by default"), checked on the addresses DNS gives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::ports::{HttpRequest, HttpResponse, HttpSend, SendError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The largest answer read from a remote server.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// A network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| format!("`{text}` is not an address or CIDR network"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("`{text}` has a bad prefix length"))?
            }
            None => max,
        };
        Ok(Network { address, prefix })
    }

    pub fn contains(self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let (whole, rest) = (usize::from(prefix / 8), prefix % 8);
    net[..whole] == ip[..whole] && (rest == 0 || (net[whole] ^ ip[whole]) & (0xff << (8 - rest)) == 0)
}

/// Where Grantry may connect: public addresses, and the loopback, private or
/// special ones an operator allows; metadata and other never-useful
/// addresses never.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    pub allowed: Vec<Network>,
}

/// The IPv4 addresses an IPv6 address stands for (mapped, compatible, NAT64,
/// 6to4, Teredo server and client): it is judged by them.
fn embedded_v4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let o = v6.octets();
    let s = v6.segments();
    let v4 = |a: u8, b: u8, c: u8, d: u8| Ipv4Addr::new(a, b, c, d);
    let mut out = Vec::new();
    if let Some(mapped) = v6.to_ipv4_mapped() {
        out.push(mapped);
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        out.push(v4(o[12], o[13], o[14], o[15]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        out.push(v4(o[12], o[13], o[14], o[15]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // RFC 8215 local-use NAT64 may use any RFC 6052 prefix length: judge every layout.
        out.push(v4(o[6], o[7], o[9], o[10]));
        out.push(v4(o[9], o[10], o[11], o[12]));
        out.push(v4(o[12], o[13], o[14], o[15]));
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        // SIIT's IPv4-translated form ::ffff:0:a.b.c.d.
        out.push(v4(o[12], o[13], o[14], o[15]));
    }
    if s[0] == 0x2002 {
        out.push(v4(o[2], o[3], o[4], o[5]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        out.push(v4(o[4], o[5], o[6], o[7]));
        out.push(v4(!o[12], !o[13], !o[14], !o[15]));
    }
    out
}

/// Refused whatever the allow-list says: link-local and cloud metadata,
/// unspecified, multicast, broadcast and 240/4.
fn never(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_link_local()
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                || o[0] == 0
                || v4.is_multicast()
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.is_multicast()
        }
    }
}

/// Loopback, private and special-purpose ranges: refused unless allowed.
fn special(ip: IpAddr) -> bool {
    const V4: &[(u8, u8, u8, u8, u8)] = &[
        (127, 0, 0, 0, 8),
        (10, 0, 0, 0, 8),
        (172, 16, 0, 0, 12),
        (192, 168, 0, 0, 16),
        (100, 64, 0, 0, 10),
        (198, 18, 0, 0, 15),
        (192, 0, 0, 0, 24),
        (192, 0, 2, 0, 24),
        (198, 51, 100, 0, 24),
        (203, 0, 113, 0, 24),
        (192, 88, 99, 0, 24),
    ];
    match ip {
        IpAddr::V4(v4) => V4.iter().any(|&(a, b, c, d, p)| {
            Network { address: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix: p }.contains(IpAddr::V4(v4))
        }),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0xdb8)
                || (s[0] == 0x100 && s[1..4] == [0, 0, 0])
                || (s[0] == 0x2001 && s[1] < 0x200)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        }
    }
}

impl AddressPolicy {
    fn allowed_by_list(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|n| n.contains(ip))
    }

    /// Whether Grantry may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let judged: Vec<IpAddr> = match ip {
            IpAddr::V6(v6) => {
                let embedded = embedded_v4(v6);
                if embedded.is_empty() {
                    vec![ip]
                } else {
                    embedded.into_iter().map(IpAddr::V4).collect()
                }
            }
            v4 => vec![v4],
        };
        if never(ip) || judged.iter().any(|a| never(*a)) {
            return false;
        }
        if judged.iter().all(|a| !special(*a)) {
            return true;
        }
        // Loopback, private or special: only what the operator allowed, as
        // given or as the IPv4 address it stands for.
        self.allowed_by_list(ip) || judged.iter().all(|a| self.allowed_by_list(*a))
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
    policy: Arc<AddressPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
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
    policy: Arc<AddressPolicy>,
}

impl Outbound {
    pub fn new(timeout: Duration, policy: AddressPolicy) -> Result<Outbound, String> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // HTTP_PROXY and friends would send requests past the address check.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver { policy: policy.clone() }))
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
        // Literal addresses skip DNS, so they are checked here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(SendError::Refused("the URL has no host".into())),
        };
        if let Some(ip) = literal.filter(|ip| !self.policy.allows(*ip)) {
            return Err(SendError::Refused(format!(
                "{ip} is an address Grantry may not call (see GRANTRY_ALLOWED_NETWORKS)"
            )));
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
                        return Err(SendError::Unreadable("the answer is larger than 1 MiB".into()));
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
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn policy(allowed: &[&str]) -> AddressPolicy {
        AddressPolicy { allowed: allowed.iter().filter_map(|n| Network::parse(n).ok()).collect() }
    }

    #[test]
    fn metadata_and_special_addresses_are_refused_whatever_is_allowed() {
        let everything = policy(&["0.0.0.0/0", "::/0"]);
        let default = policy(&[]);
        for forbidden in [
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:5601:5601",
            "fe80::1",
            "64:ff9b:1:abcd:a9:fea9:fe00:0",
            "::ffff:0:169.254.169.254",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "240.0.0.1",
        ] {
            assert!(!everything.allows(ip(forbidden)), "{forbidden} with everything allowed");
            assert!(!default.allows(ip(forbidden)), "{forbidden}");
        }
    }

    #[test]
    fn loopback_private_and_special_ranges_need_the_allow_list() {
        let default = policy(&[]);
        let loopback = policy(&["127.0.0.0/8", "::1/128"]);
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "100.64.0.1",
            "198.18.0.1",
            "::1",
            "fd12::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2002:7f00:1::",
        ] {
            assert!(!default.allows(ip(private)), "{private}");
        }
        assert!(
            loopback.allows(ip("127.0.0.1")) && loopback.allows(ip("::1")) && loopback.allows(ip("::ffff:127.0.0.1"))
        );
        assert!(!loopback.allows(ip("10.1.2.3")));
        for public in ["93.184.216.34", "2606:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"] {
            assert!(default.allows(ip(public)), "{public}");
        }
    }

    #[test]
    fn networks_parse_with_or_without_a_prefix() {
        assert!(Network::parse("10.0.0.0/8").is_ok_and(|n| n.contains(ip("10.255.0.1")) && !n.contains(ip("11.0.0.1"))));
        assert!(Network::parse("::1").is_ok_and(|n| n.contains(ip("::1"))));
        assert!(Network::parse("10.0.0.0/33").is_err() && Network::parse("nope").is_err());
    }
}
