//! OAuth 2.0 as pure functions (SPEC §4): the authorize URL, token requests
//! for every grant, parsing of token answers, and the refresh decision. No I/O
//! here: the flow service sends what these build through the `HttpSend` port.

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::ports::{HttpMethod, HttpRequest, HttpResponse};
use crate::template::{self, HostParameter, Position, RenderError};
use crate::{AuthMethod, BodyFormat, GrantType, TokenMethod};

/// A map of opened secrets that is cleared when dropped.
struct Zeroizing(Map<String, Value>);

impl std::ops::Deref for Zeroizing {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl Drop for Zeroizing {
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            if let Value::String(s) = value {
                zeroize::Zeroize::zeroize(s);
            }
        }
    }
}

/// Template variables (SPEC §3), built in order so later ones override earlier ones.
/// A template sees only the variables its `Position` allows (issue 8), and all
/// renders with one `Vars` (and its clones: one flow step, one proxied
/// request) share one `RequestBudget`.
#[derive(Default, Clone)]
pub struct Vars {
    plain: Map<String, Value>,
    /// Secret values (credentials, tokens) stay wrapped until a render
    /// needs them, so no copy of them outlives the render.
    secrets: std::collections::BTreeMap<String, SecretString>,
    budget: std::sync::Arc<template::RequestBudget>,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars")
            .field("plain", &self.plain.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Vars {
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.secrets.remove(key);
        self.plain.insert(key.to_owned(), Value::String(value.into()));
        self
    }
    /// Sets a variable whose value is a secret.
    pub fn set_secret(&mut self, key: &str, value: SecretString) -> &mut Self {
        self.plain.remove(key);
        self.secrets.insert(key.to_owned(), value);
        self
    }
    /// Sets a variable that is an object (`callback`).
    pub fn set_value(&mut self, key: &str, value: Value) -> &mut Self {
        self.secrets.remove(key);
        self.plain.insert(key.to_owned(), value);
        self
    }
    /// Adds a key/value list (`template_parameters`).
    pub fn extend_pairs(&mut self, pairs: &Value) -> &mut Self {
        for entry in pairs.as_array().into_iter().flatten() {
            if let (Some(k), Some(v)) = (entry["key"].as_str(), entry["value"].as_str()) {
                self.set(k, v);
            }
        }
        self
    }
    pub fn set_time(&mut self, now: OffsetDateTime) -> &mut Self {
        let ms = (now.unix_timestamp_nanos() / 1_000_000).to_string();
        self.set("timestamp", ms.clone()).set("utc_timestamp", ms)
    }
    /// The variables a template at `position` sees, secrets opened for this render only.
    fn for_render(&self, position: Position) -> Zeroizing {
        let mut all = template::visible(&self.plain, position);
        for (k, v) in &self.secrets {
            if position.allows(k) {
                all.insert(k.clone(), Value::String(v.expose_secret().to_owned()));
            }
        }
        Zeroizing(all)
    }
    /// Renders a template whose result goes to `position`.
    pub fn render(&self, position: Position, field: &str, text: &str) -> Result<String, FlowError> {
        template::render_budgeted(text, &self.for_render(position), &self.budget)
            .map_err(|e| FlowError::from_render(field, e))
    }
    /// Renders a URL template: its host stays, its values are encoded (`template::url`).
    pub fn render_url(&self, field: &str, text: &str, hosts: &[HostParameter]) -> Result<String, FlowError> {
        template::url::render(text, &self.for_render(Position::Url), hosts, &self.budget)
            .map_err(|e| FlowError::from_render(field, e))
    }
}

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
/// may not set them (issue 8, "Reserved keys").
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

pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Renders scope names and joins them, in order and without duplicates.
pub fn scope_string(names: &[String], separator: &str, vars: &Vars) -> Result<String, FlowError> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let rendered = vars.render(Position::AuthorizeQuery, "scope", name)?;
        let rendered = rendered.trim();
        if !rendered.is_empty() && !out.iter().any(|s| s == rendered) {
            out.push(rendered.to_owned());
        }
    }
    let sep = if separator.is_empty() { " " } else { separator };
    Ok(out.join(sep))
}

fn append_query(url: &str, params: &[(String, String)]) -> Result<String, FlowError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| FlowError::Config(format!("`{}` is not a URL: {e}", strip_query(url))))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FlowError::Config(format!("`{}` is not an http(s) URL", strip_query(url))));
    }
    if !params.is_empty() {
        let mut pairs = parsed.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    Ok(parsed.to_string())
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or("")
}

/// The rendered key/value list, skipping blank keys.
pub fn render_pairs(
    field: &str,
    pairs: &Value,
    vars: &Vars,
    position: Position,
) -> Result<Vec<(String, String)>, FlowError> {
    let mut out = Vec::new();
    for entry in pairs.as_array().into_iter().flatten() {
        let key = entry["key"].as_str().unwrap_or("").trim();
        if key.is_empty() {
            continue;
        }
        out.push((key.to_owned(), vars.render(position, field, entry["value"].as_str().unwrap_or(""))?));
    }
    Ok(out)
}

/// Drops the parameters Grantry owns from a URL's own query string, so an
/// endpoint cannot put its `redirect_uri` or `state` before Grantry's.
fn without_reserved(url: &str) -> Result<url::Url, FlowError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| FlowError::Config(format!("`{}` is not a URL: {e}", strip_query(url))))?;
    if parsed.query().is_some() {
        let kept: Vec<(String, String)> = parsed.query_pairs().into_owned().filter(|(k, _)| !is_reserved(k)).collect();
        parsed.set_query(None);
        if !kept.is_empty() {
            parsed.query_pairs_mut().extend_pairs(kept.iter());
        }
    }
    Ok(parsed)
}

/// The authorize URL of SPEC §4.1.
pub struct AuthorizeRequest<'a> {
    pub provider: &'a ProviderSettings<'a>,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub state: &'a str,
    pub code_verifier: Option<&'a str>,
    /// The authorization's `parameters`, already rendered.
    pub extra: &'a [(String, String)],
}

pub fn authorize_url(req: &AuthorizeRequest<'_>, vars: &Vars) -> Result<String, FlowError> {
    let base = vars.render_url("authorization_endpoint", req.provider.authorization_endpoint, &req.provider.hosts)?;
    let base = without_reserved(&base)?.to_string();
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), req.client_id.into()),
        ("redirect_uri".into(), req.redirect_uri.into()),
    ];
    if !req.scope.is_empty() {
        params.push(("scope".into(), req.scope.into()));
    }
    params.push(("state".into(), req.state.into()));
    if let Some(verifier) = req.code_verifier {
        params.push(("code_challenge".into(), pkce_challenge(verifier)));
        params.push(("code_challenge_method".into(), "S256".into()));
    }
    params.extend(req.extra.iter().filter(|(k, _)| !is_reserved(k)).cloned());
    append_query(&base, &params)
}

/// The grant a token request asks for.
pub enum Grant<'a> {
    AuthorizationCode { code: &'a str, redirect_uri: &'a str, code_verifier: Option<&'a str> },
    RefreshToken { refresh_token: &'a str },
    ClientCredentials { scope: &'a str },
}

/// A token request per SPEC §4.3: the grant's parameters, client
/// authentication, then the client's rendered parameters not already present;
/// `Accept: application/json` and the client's rendered headers.
pub fn token_request(
    provider: &ProviderSettings<'_>,
    client: &ClientAuth<'_>,
    grant: &Grant<'_>,
    extra_params: &[(String, String)],
    extra_headers: &[(String, String)],
    vars: &Vars,
) -> Result<HttpRequest, FlowError> {
    let url = vars.render_url("token_endpoint", provider.token_endpoint, &provider.hosts)?;
    let mut params: Vec<(String, String)> = Vec::new();
    match grant {
        Grant::AuthorizationCode { code, redirect_uri, code_verifier } => {
            params.push(("grant_type".into(), GrantType::AuthorizationCode.as_str().into()));
            params.push(("code".into(), (*code).into()));
            params.push(("redirect_uri".into(), (*redirect_uri).into()));
            if let Some(v) = code_verifier {
                params.push(("code_verifier".into(), (*v).into()));
            }
        }
        Grant::RefreshToken { refresh_token } => {
            params.push(("grant_type".into(), "refresh_token".into()));
            params.push(("refresh_token".into(), (*refresh_token).into()));
        }
        Grant::ClientCredentials { scope } => {
            params.push(("grant_type".into(), GrantType::ClientCredentials.as_str().into()));
            if !scope.is_empty() {
                params.push(("scope".into(), (*scope).into()));
            }
        }
    }
    let mut headers: Vec<(String, String)> = vec![("Accept".into(), "application/json".into())];
    client_authentication(client, &mut params, &mut headers);
    for (k, v) in extra_params {
        if !is_reserved(k) && !params.iter().any(|(pk, _)| pk == k) {
            params.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in extra_headers {
        headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.clone()));
    }
    build(provider.token_method, &url, params, headers)
}

/// `client_secret_post` puts id and secret in the form, `client_secret_basic` in
/// an HTTP Basic header (each form-encoded first, RFC 6749 §2.3.1), `none` sends the id only.
pub fn client_authentication(
    client: &ClientAuth<'_>,
    params: &mut Vec<(String, String)>,
    headers: &mut Vec<(String, String)>,
) {
    match client.method {
        AuthMethod::ClientSecretBasic => {
            let user = form_encode(client.identifier);
            let pass = form_encode(client.secret);
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            headers.push(("Authorization".into(), format!("Basic {basic}")));
        }
        AuthMethod::None => params.push(("client_id".into(), client.identifier.into())),
        AuthMethod::ClientSecretPost => {
            params.push(("client_id".into(), client.identifier.into()));
            params.push(("client_secret".into(), client.secret.into()));
        }
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn encode_form(params: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    ser.finish()
}

fn build(
    method: HttpMethod,
    url: &str,
    params: Vec<(String, String)>,
    mut headers: Vec<(String, String)>,
) -> Result<HttpRequest, FlowError> {
    match method {
        HttpMethod::Get | HttpMethod::Head => {
            Ok(HttpRequest { method, url: append_query(url, &params)?, headers, body: None })
        }
        _ => {
            let url = append_query(url, &[])?;
            headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
            Ok(HttpRequest { method, url, headers, body: Some(encode_form(&params).into_bytes()) })
        }
    }
}

/// The custom refresh request of a provider (SPEC §4.5), rendered with `vars`
/// (which hold `refresh_token`, `access_token` and the client's variables).
pub fn custom_refresh_request(spec: &Value, vars: &Vars, hosts: &[HostParameter]) -> Result<HttpRequest, FlowError> {
    let method =
        HttpMethod::from(TokenMethod::parse(spec["method"].as_str().unwrap_or_default()).unwrap_or(TokenMethod::Post));
    let url = vars.render_url("refresh_request.url", spec["url"].as_str().unwrap_or(""), hosts)?;
    let params = render_pairs("refresh_request.parameters", &spec["parameters"], vars, Position::Request)?;
    let mut headers: Vec<(String, String)> = vec![("Accept".into(), "application/json".into())];
    for (k, v) in render_pairs("refresh_request.headers", &spec["headers"], vars, Position::Request)? {
        headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
        headers.push((k, v));
    }
    let format = BodyFormat::parse(spec["body_format"].as_str().unwrap_or_default()).unwrap_or(BodyFormat::Form);
    if method == HttpMethod::Post && format == BodyFormat::Json {
        let body: Map<String, Value> = params.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        headers.push(("Content-Type".into(), "application/json".into()));
        let url = append_query(&url, &[])?;
        return Ok(HttpRequest { method, url, headers, body: Some(Value::Object(body).to_string().into_bytes()) });
    }
    build(method, &url, params, headers)
}

/// Where to read the token fields in an answer.
pub struct Pointers<'a> {
    pub access_token: &'a str,
    pub expires_in: &'a str,
    pub refresh_token: &'a str,
    pub token_type: &'a str,
}

pub const STANDARD_POINTERS: Pointers<'static> = Pointers {
    access_token: "/access_token",
    expires_in: "/expires_in",
    refresh_token: "/refresh_token",
    token_type: "/token_type",
};

/// A token answer that Grantry can store.
pub struct TokenSet {
    pub access_token: String,
    pub token_type: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub granted_scope: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    /// The whole answer, kept sealed for provider-specific fields.
    pub raw: String,
    /// What in the answer Grantry could not use (an expiry out of range).
    pub warnings: Vec<String>,
}

/// The longest `error` Grantry keeps of a provider's answer.
pub const MAX_ERROR: usize = 200;
/// The longest `error_description` (and `error_uri`) kept.
pub const MAX_ERROR_DESCRIPTION: usize = 500;
/// The longest token lifetime taken as given: longer ones are an unknown expiry.
const MAX_LIFETIME_SECONDS: f64 = 100.0 * 366.0 * 86_400.0;
/// How far a provider's `created_at` may be from Grantry's clock to be believed.
const MAX_CLOCK_SKEW: time::Duration = time::Duration::days(1);

/// The provider refused, with its `error`, `error_description` and `error_uri`
/// (RFC 6749 §5.2). A provider's answer is data: only these strings, cut to
/// length and without control characters, are kept (issue 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub status: u16,
    pub error: String,
    pub description: Option<String>,
    pub uri: Option<String>,
}

/// At most `max` characters of `text`, control characters dropped.
fn bounded(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl ProviderError {
    pub fn new(status: u16, error: &str, description: Option<&str>) -> ProviderError {
        ProviderError {
            status,
            error: bounded(error, MAX_ERROR),
            description: description.map(|d| bounded(d, MAX_ERROR_DESCRIPTION)),
            uri: None,
        }
    }
    pub fn to_json(&self) -> Value {
        let mut out =
            serde_json::json!({"error": self.error, "error_description": self.description, "status": self.status});
        if let Some(uri) = &self.uri {
            out["error_uri"] = Value::String(uri.clone());
        }
        out
    }
    pub fn is_invalid_grant(&self) -> bool {
        self.error == "invalid_grant"
    }
    pub fn message(&self) -> String {
        match &self.description {
            Some(d) => format!("{}: {d}", self.error),
            None => self.error.clone(),
        }
    }
    /// Replaces every secret the flow knows in the kept strings.
    pub fn scrub(&mut self, scrubber: &crate::scrub::Scrubber) {
        self.error = scrubber.scrub(&self.error);
        self.description = self.description.as_deref().map(|d| scrubber.scrub(d));
        self.uri = self.uri.as_deref().map(|u| scrubber.scrub(u));
    }
}

/// Reads a token endpoint's answer: JSON or form-encoded; an `error` member or a
/// status ≥ 400 is a failure; `expires_in`/`token_span` as number or numeric
/// string; `created_at` (epoch seconds or RFC 3339) as the issue time. Numbers
/// out of range make an unknown expiry with a warning, never a panic.
pub fn parse_token_response(
    response: &HttpResponse,
    pointers: &Pointers<'_>,
    now: OffsetDateTime,
) -> Result<TokenSet, ProviderError> {
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let body = parse_body(&text, &response.content_type);
    let fail =
        |error: &str, description: Option<String>| ProviderError::new(response.status, error, description.as_deref());
    let Some(body) = body else {
        let error = if response.status >= 500 { "server_error" } else { "invalid_response" };
        return Err(fail(
            error,
            Some(format!(
                "the token endpoint answered HTTP {} with a body that is neither JSON nor a form",
                response.status
            )),
        ));
    };
    if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
        let error = error.as_str().map(str::to_owned).unwrap_or_else(|| error.to_string());
        let description = body.get("error_description").and_then(Value::as_str);
        let mut refused = ProviderError::new(response.status, &error, description);
        refused.uri = body.get("error_uri").and_then(Value::as_str).map(|u| bounded(u, MAX_ERROR_DESCRIPTION));
        return Err(refused);
    }
    if response.status >= 400 {
        let error = if response.status >= 500 { "server_error" } else { "invalid_response" };
        return Err(fail(error, Some(format!("the token endpoint answered HTTP {}", response.status))));
    }
    let text_at = |pointer: &str| body.pointer(pointer).and_then(value_text);
    let Some(access_token) = text_at(pointers.access_token).filter(|t| !t.is_empty()) else {
        return Err(fail("invalid_response", Some("the token answer has no access_token".into())));
    };
    let mut warnings = Vec::new();
    let created = match body.get("created_at") {
        Some(Value::Number(n)) => Some(n.as_i64().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())),
        Some(Value::String(s)) => Some(
            s.parse::<i64>()
                .ok()
                .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                .or_else(|| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()),
        ),
        _ => None,
    };
    // An issue time far from Grantry's clock says nothing sure about expiry.
    let issued = match created {
        None => Some(now),
        Some(Some(t)) if (t - now).abs() <= MAX_CLOCK_SKEW => Some(t),
        Some(_) => None,
    };
    let lifetime = text_at(pointers.expires_in).or_else(|| text_at("/token_span"));
    let expires_at = match (lifetime.map(|s| s.trim().parse::<f64>()), issued) {
        (None, _) => None,
        (Some(Ok(s)), Some(issued)) if s.is_finite() && (0.0..=MAX_LIFETIME_SECONDS).contains(&s) => {
            issued.checked_add(time::Duration::seconds_f64(s)).filter(|t| t.year() <= 9999)
        }
        (Some(_), None) => {
            warnings.push("the token answer's created_at is not a time near now; the expiry is unknown".to_owned());
            None
        }
        (Some(_), Some(_)) => {
            warnings.push(
                "the token answer's expires_in is not a usable number of seconds; the expiry is unknown".to_owned(),
            );
            None
        }
    };
    Ok(TokenSet {
        access_token,
        token_type: text_at(pointers.token_type).filter(|t| !t.is_empty()).unwrap_or_else(|| "Bearer".into()),
        refresh_token: text_at(pointers.refresh_token).filter(|t| !t.is_empty()),
        id_token: text_at("/id_token").filter(|t| !t.is_empty()),
        granted_scope: text_at("/scope").map(|s| bounded(&s, 4096)),
        expires_at,
        raw: text,
        warnings,
    })
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_body(text: &str, content_type: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || content_type.contains("json") {
        return serde_json::from_str(trimmed).ok().filter(Value::is_object);
    }
    if trimmed.is_empty() || trimmed.starts_with('<') {
        return None;
    }
    let map: Map<String, Value> = url::form_urlencoded::parse(trimmed.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(method: HttpMethod) -> ProviderSettings<'static> {
        ProviderSettings {
            authorization_endpoint: "https://{{shop}}.example.com/oauth/authorize?prompt=consent&state=evil",
            token_endpoint: "https://{{shop}}.example.com/oauth/token",
            token_method: method,
            scope_separator: ",",
            pkce: true,
            hosts: vec![HostParameter { key: "shop".into(), pattern: None }],
        }
    }

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set("shop", "acme").set("read", "all");
        v
    }

    fn response(status: u16, content_type: &str, body: &str) -> HttpResponse {
        HttpResponse { status, content_type: content_type.into(), body: body.as_bytes().to_vec() }
    }

    #[test]
    fn the_authorize_url_keeps_the_endpoint_query_and_adds_every_parameter_in_order() {
        let scope = scope_string(
            &["chat:write".into(), "read {{read}}".into(), "chat:write".into(), "{{none}}".into()],
            ",",
            &vars(),
        )
        .unwrap();
        assert_eq!(scope, "chat:write,read all");
        let p = provider(HttpMethod::Post);
        let url = authorize_url(
            &AuthorizeRequest {
                provider: &p,
                client_id: "cid",
                redirect_uri: "http://127.0.0.1:8080/oauth/callback",
                scope: &scope,
                state: "st",
                code_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                extra: &[("team".into(), "T1".into()), ("redirect_uri".into(), "https://evil.example".into())],
            },
            &vars(),
        )
        .unwrap();
        // The RFC 7636 appendix B example verifier and challenge.
        assert_eq!(
            url,
            "https://acme.example.com/oauth/authorize?prompt=consent&response_type=code&client_id=cid\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fcallback&scope=chat%3Awrite%2Cread+all&state=st\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&team=T1"
        );
    }

    #[test]
    fn token_requests_follow_the_method_and_client_authentication() {
        let p = provider(HttpMethod::Post);
        let grant = Grant::AuthorizationCode { code: "c0de", redirect_uri: "http://x/cb", code_verifier: Some("v") };
        let client = ClientAuth { method: AuthMethod::ClientSecretBasic, identifier: "id:1", secret: "s&2" };
        let extra = vec![("audience".to_owned(), "api".to_owned()), ("code".to_owned(), "ignored".to_owned())];
        let req = token_request(&p, &client, &grant, &extra, &[("X-Tenant".into(), "acme".into())], &vars()).unwrap();
        assert_eq!(req.url, "https://acme.example.com/oauth/token");
        let body = String::from_utf8(req.body.clone().unwrap()).unwrap();
        assert_eq!(
            body,
            "grant_type=authorization_code&code=c0de&redirect_uri=http%3A%2F%2Fx%2Fcb&code_verifier=v&audience=api"
        );
        let auth = req.headers.iter().find(|(k, _)| k == "Authorization").unwrap();
        // id "id:1" and secret "s&2", each form-encoded, then base64.
        assert_eq!(auth.1, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("id%3A1:s%262")));
        assert!(req.headers.contains(&("X-Tenant".into(), "acme".into())));
        assert!(!format!("{req:?}").contains("c0de"));

        let get = provider(HttpMethod::Get);
        let client = ClientAuth { method: AuthMethod::ClientSecretPost, identifier: "id", secret: "sec" };
        let req =
            token_request(&get, &client, &Grant::RefreshToken { refresh_token: "r1" }, &[], &[], &vars()).unwrap();
        assert!(req.body.is_none());
        assert_eq!(req.url, "https://acme.example.com/oauth/token?grant_type=refresh_token&refresh_token=r1&client_id=id&client_secret=sec");
    }

    #[test]
    fn token_answers_in_json_or_form_with_their_quirks_are_understood() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let t = parse_token_response(
            &response(200, "application/json", r#"{"access_token":"a","expires_in":"3600","scope":"x y"}"#),
            &STANDARD_POINTERS,
            now,
        )
        .unwrap();
        assert_eq!((t.access_token.as_str(), t.token_type.as_str()), ("a", "Bearer"));
        assert_eq!(t.expires_at.unwrap().unix_timestamp(), 1_700_003_600);
        assert_eq!(t.granted_scope.as_deref(), Some("x y"));
        let t = parse_token_response(
            &response(
                200,
                "application/x-www-form-urlencoded",
                "access_token=f&token_type=bearer&refresh_token=r&expires_in=60",
            ),
            &STANDARD_POINTERS,
            now,
        )
        .unwrap();
        assert_eq!((t.access_token.as_str(), t.refresh_token.as_deref()), ("f", Some("r")));
        let t = parse_token_response(
            &response(200, "application/json", r#"{"access_token":"a","token_span":10,"created_at":1699999000}"#),
            &STANDARD_POINTERS,
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at.unwrap().unix_timestamp(), 1_699_999_010);
        let e = parse_token_response(
            &response(
                200,
                "application/json",
                r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect"}"#,
            ),
            &STANDARD_POINTERS,
            now,
        )
        .err()
        .unwrap();
        assert_eq!(e.message(), "bad_verification_code: The code passed is incorrect");
        let e = parse_token_response(
            &response(400, "application/json", r#"{"error":"invalid_grant"}"#),
            &STANDARD_POINTERS,
            now,
        )
        .err()
        .unwrap();
        assert!(e.is_invalid_grant());
        let e = parse_token_response(&response(502, "text/html", "<html>bad gateway</html>"), &STANDARD_POINTERS, now)
            .err()
            .unwrap();
        assert_eq!(e.error, "server_error");
        let e = parse_token_response(
            &response(200, "application/json", r#"{"token_type":"bearer"}"#),
            &STANDARD_POINTERS,
            now,
        )
        .err()
        .unwrap();
        assert_eq!(e.error, "invalid_response");
        let custom = Pointers {
            access_token: "/data/token",
            expires_in: "/data/ttl",
            refresh_token: "/data/refresh",
            token_type: "/data/type",
        };
        let t =
            parse_token_response(&response(200, "application/json", r#"{"data":{"token":"n","ttl":5}}"#), &custom, now)
                .unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_at.unwrap().unix_timestamp()), ("n", 1_700_000_005));
    }

    #[test]
    fn a_custom_refresh_request_renders_its_templates_into_form_or_json() {
        let mut v = vars();
        v.set("refresh_token", "rt-1");
        let spec = json!({"method": "POST", "url": "https://{{shop}}.example.com/refresh", "body_format": "json",
            "headers": [{"key": "X-Refresh", "value": "{{ refresh_token | base64_encode }}"}],
            "parameters": [{"key": "token", "value": "{{refresh_token}}"}]});
        let req = custom_refresh_request(&spec, &v, &[HostParameter { key: "shop".into(), pattern: None }]).unwrap();
        assert_eq!(req.url, "https://acme.example.com/refresh");
        assert_eq!(String::from_utf8(req.body.unwrap()).unwrap(), r#"{"token":"rt-1"}"#);
        assert!(req.headers.contains(&("X-Refresh".into(), "cnQtMQ==".into())));
    }

    #[test]
    fn random_token_answers_never_panic_and_give_sane_expiries() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let keys = [
            "access_token",
            "expires_in",
            "token_span",
            "created_at",
            "token_type",
            "refresh_token",
            "scope",
            "error",
            "error_description",
            "error_uri",
            "id_token",
        ];
        let numbers =
            ["1e18", "-1", "1e308", "NaN", "inf", "9223372036854775807", "253402300799", "0", "3600", "1.5", "-0"];
        for _ in 0..5_000 {
            let mut body = Map::new();
            for key in keys {
                if rng.gen_bool(0.5) {
                    continue;
                }
                let value = match rng.gen_range(0..8) {
                    0 => Value::Null,
                    1 => Value::Bool(rng.gen()),
                    2 => json!(rng.gen::<i64>()),
                    3 => json!(rng.gen::<f64>() * 10f64.powi(rng.gen_range(0..300))),
                    4 => json!(numbers[rng.gen_range(0..numbers.len())]),
                    5 => json!("x".repeat(rng.gen_range(0..600))),
                    6 => json!({"nested": [1, 2]}),
                    _ => json!(["a"]),
                };
                body.insert(key.to_owned(), value);
            }
            let status = [200u16, 201, 400, 401, 500, 503][rng.gen_range(0..6)];
            let content_type = ["application/json", "text/plain", ""][rng.gen_range(0..3)];
            let text = if rng.gen_bool(0.9) {
                Value::Object(body).to_string()
            } else {
                "access_token=a&expires_in=1e18".into()
            };
            match parse_token_response(&response(status, content_type, &text), &STANDARD_POINTERS, now) {
                Ok(t) => {
                    assert!(!t.access_token.is_empty());
                    assert!(t.expires_at.is_none_or(|e| e.year() <= 9999 && e >= now - MAX_CLOCK_SKEW));
                }
                Err(e) => {
                    assert!(e.error.chars().count() <= MAX_ERROR);
                    assert!(e.description.as_ref().is_none_or(|d| d.chars().count() <= MAX_ERROR_DESCRIPTION));
                }
            }
        }
    }

    #[test]
    fn freshness_follows_expiry_margin_and_refreshability() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let margin = time::Duration::seconds(60);
        assert_eq!(freshness(None, now, margin, false), Freshness::Fresh);
        assert_eq!(freshness(Some(now + time::Duration::seconds(61)), now, margin, true), Freshness::Fresh);
        assert_eq!(freshness(Some(now + time::Duration::seconds(59)), now, margin, true), Freshness::Refresh);
        assert_eq!(freshness(Some(now + time::Duration::seconds(59)), now, margin, false), Freshness::Expiring);
        assert_eq!(freshness(Some(now - time::Duration::seconds(1)), now, margin, false), Freshness::Expired);
    }
}
