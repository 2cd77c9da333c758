//! Building requests (docs/concepts.md §4.1, §4.3, §4.5): the authorize URL,
//! token requests for every grant, client authentication, the custom refresh request.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest as _;

use super::*;

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

pub(super) fn append_query(url: &str, params: &[(String, String)]) -> Result<String, FlowError> {
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

pub(super) fn strip_query(url: &str) -> &str {
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
pub(super) fn without_reserved(url: &str) -> Result<url::Url, FlowError> {
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

/// The authorize URL of docs/concepts.md §4.1.
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

/// A token request per docs/concepts.md §4.3: the grant's parameters, client
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

pub(super) fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn encode_form(params: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    ser.finish()
}

pub(super) fn build(
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

/// The custom refresh request of a provider (docs/concepts.md §4.5), rendered with `vars`
/// (which hold `refresh_token`, `access_token` and the client's variables).
pub fn custom_refresh_request(spec: &Value, vars: &Vars, hosts: &[HostParameter]) -> Result<HttpRequest, FlowError> {
    let method = HttpMethod::from(TokenMethod::lenient(spec["method"].as_str().unwrap_or_default()));
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
