//! The outgoing HTTP port: what the flows send to providers and remote APIs.
//! The server implements it with the address policy of `outbound.rs`.

use std::fmt;

/// An outgoing HTTP request. It carries client secrets and tokens, so Debug
/// shows only the method and URL without its query.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.split('?').next().unwrap_or("");
        write!(f, "HttpRequest({:?} {url})", self.method)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl From<crate::TokenMethod> for HttpMethod {
    fn from(method: crate::TokenMethod) -> HttpMethod {
        match method {
            crate::TokenMethod::Get => HttpMethod::Get,
            crate::TokenMethod::Post => HttpMethod::Post,
        }
    }
}

impl HttpMethod {
    /// Any method a proxied request may use.
    pub fn from_name(s: &str) -> Option<HttpMethod> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            "HEAD" => HttpMethod::Head,
            "OPTIONS" => HttpMethod::Options,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
        }
    }
}

/// An answer; its body may hold tokens, so `Debug` shows only its size.
#[derive(Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpResponse({} {}, {} bytes)", self.status, self.content_type, self.body.len())
    }
}

/// What the outgoing HTTP client can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Network errors and timeouts: worth retrying.
    #[error("{0}")]
    Transient(String),
    /// Refused before or while sending (a forbidden address): not retried.
    #[error("{0}")]
    Refused(String),
    /// The answer came but cannot be read (larger than allowed).
    #[error("{0}")]
    Unreadable(String),
}

#[async_trait::async_trait]
pub trait HttpSend: Send + Sync {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SendError>;
}
