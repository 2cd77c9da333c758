//! The proxy (docs/concepts.md §7.2): a connection's request built from its
//! templates and the caller's request, the authorization applied, and the
//! rule for a remote API's 401.

use serde_json::Value;

use super::apply::Outgoing;
use super::{not_found, state_error, template_error, types, Flows};
use crate::access::{Action, Caller};
use crate::oauth2::Vars;
use crate::ports::{HttpMethod, HttpRequest};
use crate::template::{HostParameter, Position};
use crate::{AuthorizationType, Error, ErrorCode, Id, Kind, Record};

/// A request an integration sends through a connection.
pub struct ProxyInput {
    pub method: String,
    /// The path after `/proxy/`, as the caller sent it (still percent-encoded).
    pub path: String,
    /// The caller's raw query string.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The caller's request carries its own credentials: `Debug` shows no values.
impl std::fmt::Debug for ProxyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ProxyInput")
            .field("method", &self.method)
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The request to send, and the authorization to refresh when the remote API
/// answers 401.
#[derive(Debug)]
pub struct Prepared {
    pub request: HttpRequest,
    pub refreshable: Option<Id>,
}

/// Headers that belong to one hop, plus the ones Grantry sets itself.
pub(crate) const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    // The caller's own credentials are for Grantry, never for the remote API.
    "authorization",
    "cookie",
    // What a proxy in front of Grantry says about the caller stays here.
    "forwarded",
    "x-real-ip",
    // Headers some servers honour to route or re-method a request, past the
    // connection's base path.
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether a header of a response or request crosses the proxy. The
/// remote's cookies stay behind too (docs/concepts.md §7.4).
pub fn is_forwarded_header(name: &str) -> bool {
    !NOT_FORWARDED.iter().any(|h| h.eq_ignore_ascii_case(name))
        && !name.to_ascii_lowercase().starts_with("x-forwarded-")
        && !name.eq_ignore_ascii_case("set-cookie")
        && !name.eq_ignore_ascii_case("set-cookie2")
}

/// The caller's headers to forward: not the ones of `is_forwarded_header`,
/// nor any that the `Connection` header names as belonging to this hop.
pub(crate) fn forwarded_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let named: Vec<String> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .collect();
    headers
        .iter()
        .filter(|(k, _)| is_forwarded_header(k) && !named.contains(&k.to_ascii_lowercase()))
        .cloned()
        .collect()
}

/// Checks the caller's path: once decoded it may hold no `.` or `..`
/// segment, so it stays under the connection's base path.
pub(crate) fn checked_path(path: &str) -> Result<&str, Error> {
    let decoded = percent_decode(path);
    if decoded.split(['/', '\\']).any(|segment| segment == "." || segment == "..") {
        return Err(Error::BadRequest(
            "the proxied path may not hold `.` or `..` segments (in any encoding); it stays under the connection's URL"
                .into(),
        ));
    }
    Ok(path.trim_start_matches('/'))
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Flows {
    /// Builds the request a connection sends for a caller (docs/concepts.md §7.2): the
    /// connection's URL, headers and parameters rendered, the caller's path,
    /// query, headers and body, and the authorization applied.
    pub async fn prepare_proxy(
        &self,
        caller: &Caller,
        connection_id: &Id,
        input: &ProxyInput,
    ) -> Result<Prepared, Error> {
        caller.check(Action::UseSecret)?;
        let method = HttpMethod::from_name(&input.method)
            .ok_or_else(|| Error::BadRequest(format!("the proxy does not forward {} requests", input.method)))?;
        let path = checked_path(&input.path)?;
        let connection = self
            .records
            .stored(Kind::Connection, connection_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no connection has id `{connection_id}`")))?;
        let auth = match connection.reference("authorization") {
            Some(id) => Some(self.records.stored(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?),
            None => None,
        };
        let handler_on = connection.data.get("authorization_handler").and_then(Value::as_bool).unwrap_or(false);
        let mut vars = Vars::default();
        vars.extend_pairs(connection.data.get("template_parameters").unwrap_or(&Value::Null));
        if let Some(auth) = &auth {
            vars.extend_pairs(auth.data.get("template_parameters").unwrap_or(&Value::Null));
            if auth.authorization_type() == Some(AuthorizationType::Generic) {
                vars.set_value("callback", self.captured(auth).await?);
            }
            if handler_on {
                self.authorization_variables(auth, &mut vars).await?;
            }
        }
        let misconfigured =
            |e: crate::oauth2::FlowError| template_error(e, |m| state_error(ErrorCode::ConnectionMisconfigured, m));
        let hosts = HostParameter::list(connection.data.get("host_parameters"));
        let base = vars.render_url("url", connection.text("url"), &hosts).map_err(misconfigured)?;
        let base_path = url::Url::parse(&base).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default();
        let (base, base_query) = match base.split('#').next().unwrap_or("").split_once('?') {
            Some((b, q)) => (b.trim_end_matches('/').to_owned(), Some(q.to_owned())),
            None => (base.split('#').next().unwrap_or("").trim_end_matches('/').to_owned(), None),
        };
        let mut url = if path.is_empty() { base } else { format!("{base}/{path}") };
        let mut query: Vec<String> =
            base_query.into_iter().chain(input.query.iter().cloned()).filter(|q| !q.is_empty()).collect();
        let list = |field: &str| connection.data.get(field).unwrap_or(&Value::Null);
        let params = crate::oauth2::render_pairs("parameters", list("parameters"), &vars, Position::Request)
            .map_err(misconfigured)?;
        if !params.is_empty() {
            query.push(crate::oauth2::encode_form(&params));
        }
        let mut headers = forwarded_headers(&input.headers);
        for (k, v) in
            crate::oauth2::render_pairs("headers", list("headers"), &vars, Position::Request).map_err(misconfigured)?
        {
            headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let mut parsed =
            url::Url::parse(&url).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
                state_error(
                    ErrorCode::ConnectionMisconfigured,
                    "the connection's url does not render to an http(s) URL",
                )
            })?;
        if !parsed.path().starts_with(&base_path) {
            return Err(Error::BadRequest("the proxied path leaves the connection's URL".into()));
        }
        let mut refreshable = None;
        if let (Some(auth), false) = (&auth, handler_on) {
            let method = input.method.to_ascii_uppercase();
            let target = parsed.clone();
            let request = Outgoing {
                method: &method,
                url: &target,
                headers: &headers,
                body: std::str::from_utf8(&input.body).ok(),
            };
            let applied = self.apply(auth, &request).await?;
            if !applied.query.is_empty() {
                parsed.query_pairs_mut().extend_pairs(applied.query.iter());
            }
            for (k, v) in applied.headers {
                headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
                headers.push((k, v));
            }
            if auth.authorization_type() == Some(AuthorizationType::OAuth2) {
                refreshable = Some(auth.id.clone());
            }
        }
        let body = (!input.body.is_empty()).then(|| input.body.clone());
        Ok(Prepared { request: HttpRequest { method, url: parsed.to_string(), headers, body }, refreshable })
    }

    /// The variables a connection's templates see when it handles the
    /// authorization itself.
    pub(crate) async fn authorization_variables(&self, auth: &Record, vars: &mut Vars) -> Result<(), Error> {
        super::check_usable(auth)?;
        types::of_record(auth)?.variables(self, auth, vars).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_paths_cannot_climb_out() {
        for bad in ["../x", "%2e%2e/x", ".%2e/x", "%2E./x", "a/./b", "a/%2E%2E%2fb", "a\\..\\b", "..%5cb"] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
        assert_eq!(checked_path("/users/42/..x").ok(), Some("users/42/..x"));
    }

    #[test]
    fn hop_headers_cookies_and_forwarding_headers_stay_behind() {
        let h = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let kept = forwarded_headers(&[
            h("Cookie", "a=1"),
            h("X-Forwarded-For", "1.2.3.4"),
            h("Connection", "close, X-Secret-Hop"),
            h("X-Secret-Hop", "1"),
            h("Accept", "*/*"),
        ]);
        assert_eq!(kept, [h("Accept", "*/*")]);
        assert!(!is_forwarded_header("Set-Cookie"));
    }
}
