//! OAuth 1.0a request signing (RFC 5849 §3): the signature base string,
//! HMAC-SHA1, HMAC-SHA256 and PLAINTEXT, and the `Authorization: OAuth` header.
//! Pure functions; the nonce and timestamp come from the caller.

pub use crate::SignatureMethod;
use base64::Engine as _;
use hmac::{Hmac, Mac};

/// RFC 3986 percent-encoding as RFC 5849 §3.6 wants it: everything but the
/// unreserved characters, in upper-case hex, over UTF-8.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Everything that signs one request.
pub struct Signer<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub token: Option<&'a str>,
    pub token_secret: &'a str,
    pub method: SignatureMethod,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub realm: Option<&'a str>,
    /// Extra protocol parameters: `oauth_callback` or `oauth_verifier`.
    pub extra: &'a [(&'a str, &'a str)],
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("method", &self.method)
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// The base string URI (§3.4.1.2): lower-case scheme and host, the port only
/// when it is not the scheme's default, the path; no query, no fragment.
pub fn base_uri(url: &url::Url) -> String {
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let port = match (url.port(), scheme.as_str()) {
        (Some(80), "http") | (Some(443), "https") | (None, _) => String::new(),
        (Some(p), _) => format!(":{p}"),
    };
    let path = if url.path().is_empty() { "/" } else { url.path() };
    format!("{scheme}://{host}{port}{path}")
}

/// The signature base string (§3.4.1): method, base URI and the normalized
/// parameters of the query, the protocol and (for form bodies) the body.
pub fn base_string(method: &str, url: &url::Url, protocol: &[(String, String)], form_body: Option<&str>) -> String {
    let mut params: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (encode(&k), encode(&v))).collect();
    params.extend(
        protocol.iter().filter(|(k, _)| k != "realm" && k != "oauth_signature").map(|(k, v)| (encode(k), encode(v))),
    );
    if let Some(body) = form_body {
        params.extend(url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (encode(&k), encode(&v))));
    }
    params.sort();
    let normalized: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}&{}&{}", method.to_ascii_uppercase(), encode(&base_uri(url)), encode(&normalized.join("&")))
}

/// A signed request: the signature and the `Authorization` header value.
pub struct Signed {
    pub signature: String,
    pub authorization: String,
    /// The protocol parameters, signature included.
    pub params: Vec<(String, String)>,
}

pub fn sign(signer: &Signer<'_>, method: &str, url: &url::Url, form_body: Option<&str>) -> Signed {
    let mut protocol: Vec<(String, String)> = vec![("oauth_consumer_key".into(), signer.consumer_key.into())];
    if let Some(token) = signer.token {
        protocol.push(("oauth_token".into(), token.into()));
    }
    protocol.push(("oauth_signature_method".into(), signer.method.as_str().into()));
    protocol.push(("oauth_timestamp".into(), signer.timestamp.into()));
    protocol.push(("oauth_nonce".into(), signer.nonce.into()));
    protocol.push(("oauth_version".into(), "1.0".into()));
    protocol.extend(signer.extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let key = format!("{}&{}", encode(signer.consumer_secret), encode(signer.token_secret));
    let signature = match signer.method {
        SignatureMethod::Plaintext => key,
        SignatureMethod::HmacSha1 => {
            let base = base_string(method, url, &protocol, form_body);
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable_key());
            mac.update(base.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        SignatureMethod::HmacSha256 => {
            let base = base_string(method, url, &protocol, form_body);
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable_key());
            mac.update(base.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
    };
    protocol.push(("oauth_signature".into(), signature.clone()));
    let mut parts: Vec<String> = Vec::new();
    if let Some(realm) = signer.realm {
        parts.push(format!("realm=\"{}\"", encode(realm)));
    }
    parts.extend(protocol.iter().map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v))));
    Signed { signature, authorization: format!("OAuth {}", parts.join(", ")), params: protocol }
}

// HMAC takes keys of any length; this cannot happen.
#[allow(clippy::panic)]
fn unreachable_key<T>() -> T {
    panic!("HMAC refused a key")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_base_string_of_rfc_5849_section_3_4_1_1() {
        let url = url::Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        let protocol: Vec<(String, String)> = [
            ("realm", "Example"),
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("oauth_signature", "bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let base = base_string("post", &url, &protocol, Some("c2&a3=2+q"));
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D\
             %26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1\
             %26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn the_signed_request_of_rfc_5849_section_1_2() {
        // The photo-sharing example, with oauth_version as the RFC's errata adds.
        let url = url::Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        let signer = Signer {
            consumer_key: "dpf43f3p2l4k3l03",
            consumer_secret: "kd94hf93k423kf44",
            token: Some("nnch734d00sl2jdk"),
            token_secret: "pfkkdhi9sl3r4s00",
            method: SignatureMethod::HmacSha1,
            timestamp: "1191242096",
            nonce: "kllo9940pd9333jh",
            realm: Some("Photos"),
            extra: &[],
        };
        let signed = sign(&signer, "GET", &url, None);
        // The widely used OAuth 1.0 test vector (oauth.net's "photos" example).
        assert_eq!(signed.signature, "tR3+Ty81lMeYAr/Fid0kMTYa/WM=");
        assert!(signed.authorization.starts_with("OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\""));
        assert!(signed.authorization.contains("oauth_signature=\"tR3%2BTy81lMeYAr%2FFid0kMTYa%2FWM%3D\""));
    }

    #[test]
    fn plaintext_signs_with_the_key_and_ports_are_kept_only_when_not_default() {
        let url = url::Url::parse("HTTPS://Example.COM:443/a%20b?x=1").unwrap();
        assert_eq!(base_uri(&url), "https://example.com/a%20b");
        assert_eq!(base_uri(&url::Url::parse("http://example.com:8080/").unwrap()), "http://example.com:8080/");
        let signer = Signer {
            consumer_key: "k",
            consumer_secret: "c&s",
            token: None,
            token_secret: "",
            method: SignatureMethod::Plaintext,
            timestamp: "1",
            nonce: "n",
            realm: None,
            extra: &[("oauth_callback", "http://x/cb")],
        };
        let signed = sign(&signer, "POST", &url, None);
        assert_eq!(signed.signature, "c%26s&");
        assert!(signed.authorization.contains("oauth_callback=\"http%3A%2F%2Fx%2Fcb\""));
        assert_eq!(encode("Ünïcode ~-._!*"), "%C3%9Cn%C3%AFcode%20~-._%21%2A");
    }
}
