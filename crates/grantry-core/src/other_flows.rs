//! OAuth 1.0a (RFC 5849) and generic callback authorizations (SPEC §5), and
//! applying any authorization to a request (SPEC §7).

use base64::Engine as _;
use rand::Rng as _;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use crate::flows::{
    check_usable, hash_state, not_found, random_token, state_error, Authorized, CallbackOutcome, Failure, Flows, Parts,
    STATE_TTL,
};
use crate::oauth1::{self, SignatureMethod, Signer};
use crate::oauth2::{HttpMethod, HttpRequest, ProviderError, SendError};
use crate::store::PendingState;
use crate::{timestamp, Error, Id, Kind, Record};

/// A request an integration wants Grantry to authorize.
pub struct SignInput {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// What to add to a request: headers and query parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

impl Applied {
    pub fn to_json(&self) -> Value {
        let map = |pairs: &[(String, String)]| -> Map<String, Value> {
            pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
        };
        json!({"headers": map(&self.headers), "query": map(&self.query)})
    }
}

/// 128 random bits as lowercase hex: safe for every provider's nonce rules.
fn nonce() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn form_field(form: &[(String, String)], key: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
}

impl Flows {
    fn signature_method(&self, provider: &Record) -> SignatureMethod {
        SignatureMethod::parse(provider.text("signature_method")).unwrap_or(SignatureMethod::HmacSha1)
    }

    /// Sends an OAuth 1.0a protocol request (request token, access token) and
    /// reads the token pair of its form-encoded answer.
    async fn oauth1_token_pair(
        &self,
        method: HttpMethod,
        url: &str,
        signer: &Signer<'_>,
        what: &str,
    ) -> Result<(String, String), Failure> {
        let parsed = url::Url::parse(url).map_err(|e| Failure::Config(format!("`{url}` is not a URL: {e}")))?;
        let signed = oauth1::sign(signer, method.as_str(), &parsed, None);
        let mut headers =
            vec![("Authorization".to_owned(), signed.authorization), ("Accept".to_owned(), "*/*".to_owned())];
        let body = (method == HttpMethod::Post).then(|| {
            headers.push(("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned()));
            Vec::new()
        });
        let request = HttpRequest { method, url: parsed.to_string(), headers, body };
        let response = self.http.send(request).await.map_err(|e| match e {
            SendError::Transient(m) => Failure::Transient(m),
            SendError::Refused(m) => Failure::Config(m),
        })?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let form: Vec<(String, String)> = url::form_urlencoded::parse(text.trim().as_bytes()).into_owned().collect();
        if response.status >= 400 {
            let problem = form_field(&form, "oauth_problem").unwrap_or_else(|| format!("HTTP {}", response.status));
            return Err(Failure::Provider(ProviderError {
                status: response.status,
                error: problem,
                description: form_field(&form, "oauth_problem_advice"),
            }));
        }
        match (form_field(&form, "oauth_token"), form_field(&form, "oauth_token_secret")) {
            (Some(token), Some(secret)) => Ok((token, secret)),
            _ => Err(Failure::Provider(ProviderError {
                status: response.status,
                error: "invalid_response".into(),
                description: Some(format!("the {what} answer has no oauth_token and oauth_token_secret")),
            })),
        }
    }

    pub(crate) async fn authorize_oauth1(&self, parts: Parts, return_to: Option<&str>) -> Result<Authorized, Error> {
        let (key, secret) = self.client_credentials(&parts.client)?;
        let vars = self.vars(&parts, &key, &secret);
        let endpoint = vars
            .render("request_token_endpoint", parts.provider.text("request_token_endpoint"))
            .map_err(|e| state_error("provider_misconfigured", e.to_string()))?;
        let callback = self.callback_url();
        let (timestamp_now, nonce) = (self.clock.now().unix_timestamp().to_string(), nonce());
        let extra = [("oauth_callback", callback.as_str())];
        let signer = Signer {
            consumer_key: &key,
            consumer_secret: &secret,
            token: None,
            token_secret: "",
            method: self.signature_method(&parts.provider),
            timestamp: &timestamp_now,
            nonce: &nonce,
            realm: None,
            extra: &extra,
        };
        let mut auth = parts.auth.clone();
        let (token, token_secret) = match self
            .oauth1_token_pair(HttpMethod::Post, &endpoint, &signer, "request token")
            .await
        {
            Ok(pair) => pair,
            Err(failure) => {
                let message = failure.message();
                self.record_failure(&mut auth, &failure, "failed").await?;
                return Err(state_error("authorization_failed", format!("the request token call failed: {message}")));
            }
        };
        // The request token is what the provider sends back, so it keys the pending state.
        let state_hash = hash_state(&token);
        let now = self.clock.now();
        self.store
            .insert_state(&PendingState {
                code_verifier: Some(self.sealer.seal(&token_secret, &format!("state/{state_hash}"))?),
                state_hash,
                authorization_id: auth.id.clone(),
                return_to: return_to.map(str::to_owned),
                created_at: timestamp(now),
                expires_at: timestamp(now + STATE_TTL),
            })
            .await?;
        let base = vars
            .render("authorization_endpoint", parts.provider.text("authorization_endpoint"))
            .map_err(|e| state_error("provider_misconfigured", e.to_string()))?;
        let mut url = url::Url::parse(&base)
            .map_err(|e| state_error("provider_misconfigured", format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut().append_pair("oauth_token", &token);
        let extra =
            crate::oauth2::render_pairs("parameters", parts.auth.data.get("parameters").unwrap_or(&Value::Null), &vars)
                .map_err(|e| Error::field("parameters", e.to_string()))?;
        url.query_pairs_mut().extend_pairs(extra.iter());
        Ok(Authorized::Redirect(url.to_string()))
    }

    pub(crate) async fn callback_oauth1(
        &self,
        parts: Parts,
        pending: &PendingState,
        params: &[(String, String)],
        mut outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
        let mut auth = parts.auth.clone();
        let (Some(token), Some(verifier)) = (get("oauth_token"), get("oauth_verifier")) else {
            let failure = Failure::Provider(ProviderError {
                status: 0,
                error: "access_denied".into(),
                description: Some(
                    "the provider sent no oauth_verifier: the resource owner did not grant access".into(),
                ),
            });
            outcome.error = Some(failure.message());
            self.record_failure(&mut auth, &failure, "unauthorized").await?;
            return Ok(outcome);
        };
        let token_secret = match &pending.code_verifier {
            Some(sealed) => self.sealer.open(sealed, &format!("state/{}", pending.state_hash))?,
            None => return Err(Error::Internal("a pending OAuth 1.0a request without its token secret".into())),
        };
        let (key, secret) = self.client_credentials(&parts.client)?;
        let vars = self.vars(&parts, &key, &secret);
        let endpoint = vars
            .render("token_endpoint", parts.provider.text("token_endpoint"))
            .map_err(|e| state_error("provider_misconfigured", e.to_string()))?;
        let (timestamp_now, nonce) = (self.clock.now().unix_timestamp().to_string(), nonce());
        let extra = [("oauth_verifier", verifier.as_str())];
        let signer = Signer {
            consumer_key: &key,
            consumer_secret: &secret,
            token: Some(&token),
            token_secret: token_secret.expose_secret(),
            method: self.signature_method(&parts.provider),
            timestamp: &timestamp_now,
            nonce: &nonce,
            realm: None,
            extra: &extra,
        };
        let method = HttpMethod::parse(parts.provider.text("token_method"));
        let (access, access_secret) = match self.oauth1_token_pair(method, &endpoint, &signer, "access token").await {
            Ok(pair) => pair,
            Err(failure) => {
                outcome.error = Some(failure.message());
                self.record_failure(&mut auth, &failure, "failed").await?;
                return Ok(outcome);
            }
        };
        for (field, value) in [("access_token", &access), ("access_token_secret", &access_secret)] {
            auth.secrets.insert(field.to_owned(), self.sealer.seal(value, &crate::seal_context(&auth.id, field))?);
        }
        match get("realmId") {
            Some(realm) => auth.data.insert("realm_id".into(), json!(realm)),
            None => auth.data.remove("realm_id"),
        };
        self.save_authorized(&mut auth, true).await?;
        outcome.authorized = true;
        Ok(outcome)
    }

    pub(crate) async fn authorize_generic(&self, parts: Parts, return_to: Option<&str>) -> Result<Authorized, Error> {
        // A generic client may have no identifier or secret: its templates decide what to send.
        let open = |field: &str| -> Result<String, Error> {
            Ok(self.open_secret(&parts.client, field)?.map(|s| s.expose_secret().to_owned()).unwrap_or_default())
        };
        let (key, secret) = (open("identifier")?, open("secret")?);
        let state = random_token();
        // The state rides in the callback URL's path, so it survives providers
        // that append their own query string.
        let callback = format!("{}/{state}", self.callback_url());
        let mut vars = self.vars(&parts, &key, &secret);
        let callback_key = match parts.auth.text("callback_key") {
            "" => "redirect_uri",
            key => key,
        };
        vars.set(callback_key, callback.clone()).set("callback_token", state.clone());
        let base = vars
            .render("authorization_endpoint", parts.provider.text("authorization_endpoint"))
            .map_err(|e| state_error("provider_misconfigured", e.to_string()))?;
        let mut url = url::Url::parse(&base)
            .map_err(|e| state_error("provider_misconfigured", format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut().append_pair(callback_key, &callback);
        let extra =
            crate::oauth2::render_pairs("parameters", parts.auth.data.get("parameters").unwrap_or(&Value::Null), &vars)
                .map_err(|e| Error::field("parameters", e.to_string()))?;
        url.query_pairs_mut().extend_pairs(extra.iter());
        let now = self.clock.now();
        self.store
            .insert_state(&PendingState {
                state_hash: hash_state(&state),
                authorization_id: parts.auth.id.clone(),
                code_verifier: None,
                return_to: return_to.map(str::to_owned),
                created_at: timestamp(now),
                expires_at: timestamp(now + STATE_TTL),
            })
            .await?;
        Ok(Authorized::Redirect(url.to_string()))
    }

    /// The callback of a generic authorization: the parameters named in
    /// `capture` become template parameters, and it is authorized.
    pub(crate) async fn callback_generic(
        &self,
        mut auth: Record,
        params: &[(String, String)],
        mut outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        if let Some(error) = get("error") {
            let failure = Failure::Provider(ProviderError { status: 0, error, description: get("error_description") });
            outcome.error = Some(failure.message());
            self.record_failure(&mut auth, &failure, "unauthorized").await?;
            return Ok(outcome);
        }
        let capture: Vec<String> = auth
            .data
            .get("capture")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let mut pairs: Vec<Value> =
            auth.data.get("template_parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        for name in &capture {
            let Some(value) = get(name) else { continue };
            pairs.retain(|p| p["key"] != name.as_str());
            pairs.push(json!({"key": name, "value": value, "description": "captured from the callback"}));
        }
        auth.data.insert("template_parameters".into(), Value::Array(pairs));
        self.save_authorized(&mut auth, true).await?;
        outcome.authorized = true;
        Ok(outcome)
    }

    /// What to add to a request so that the remote API accepts it on behalf of
    /// this authorization, whatever its type (SPEC §7).
    pub async fn sign(&self, id: &Id, input: &SignInput) -> Result<Applied, Error> {
        let url = url::Url::parse(&input.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::field("url", "must be an absolute http:// or https:// URL"))?;
        let method = input.method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::field("method", "must be an HTTP method such as GET or POST"));
        }
        let auth = self.store.get(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?;
        self.apply(&auth, &method, &url, input).await
    }

    pub(crate) async fn apply(
        &self,
        auth: &Record,
        method: &str,
        url: &url::Url,
        input: &SignInput,
    ) -> Result<Applied, Error> {
        check_usable(auth)?;
        let mut applied = Applied::default();
        let secret = |field: &str| -> Result<String, Error> {
            self.open_secret(auth, field)?
                .map(|s| s.expose_secret().to_owned())
                .ok_or_else(|| state_error("not_authorized", format!("the authorization has no {field}")))
        };
        match auth.rtype.as_str() {
            "oauth2" => {
                let token = self.fresh_token(&auth.id).await?;
                let answer: Value = serde_json::from_str(&token.0).map_err(|e| Error::Internal(e.to_string()))?;
                let header = answer["authorization_header"].as_str().unwrap_or_default().to_owned();
                applied.headers.push(("Authorization".into(), header));
            }
            "basic" => {
                let credentials = format!("{}:{}", secret("username")?, secret("password")?);
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                applied.headers.push(("Authorization".into(), format!("Basic {encoded}")));
            }
            "api_key" => {
                let pair = (auth.text("key_name").to_owned(), secret("key_value")?);
                if auth.text("placement") == "query" {
                    applied.query.push(pair);
                } else {
                    applied.headers.push(pair);
                }
            }
            "oauth1" => {
                let parts = self.load_parts(auth.clone()).await?;
                let (key, consumer_secret) = self.client_credentials(&parts.client)?;
                let (token, token_secret) = (secret("access_token")?, secret("access_token_secret")?);
                let is_form = input.headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("content-type")
                        && v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
                });
                let (timestamp_now, nonce) = (self.clock.now().unix_timestamp().to_string(), nonce());
                let signer = Signer {
                    consumer_key: &key,
                    consumer_secret: &consumer_secret,
                    token: Some(&token),
                    token_secret: &token_secret,
                    method: self.signature_method(&parts.provider),
                    timestamp: &timestamp_now,
                    nonce: &nonce,
                    realm: None,
                    extra: &[],
                };
                let body = input.body.as_deref().filter(|_| is_form);
                applied.headers.push(("Authorization".into(), oauth1::sign(&signer, method, url, body).authorization));
            }
            // A generic authorization hands its captured values to connection templates; it adds nothing itself.
            _ => {}
        }
        Ok(applied)
    }
}

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

/// The request to send, and the authorization to refresh when the remote API
/// answers 401.
pub struct Prepared {
    pub request: HttpRequest,
    pub refreshable: Option<Id>,
}

/// Headers that belong to one hop, plus the ones Grantry sets itself.
const NOT_FORWARDED: &[&str] = &[
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
    // The caller's own credential is for Grantry, never for the remote API.
    "authorization",
];

pub fn is_forwarded_header(name: &str) -> bool {
    !NOT_FORWARDED.iter().any(|h| h.eq_ignore_ascii_case(name))
}

impl Flows {
    /// Builds the request a connection sends for a caller (SPEC §7): the
    /// connection's URL, headers and parameters rendered, the caller's path,
    /// query, headers and body, and the authorization applied.
    pub async fn prepare_proxy(&self, connection_id: &Id, input: &ProxyInput) -> Result<Prepared, Error> {
        let method = HttpMethod::from_name(&input.method)
            .ok_or_else(|| Error::BadRequest(format!("the proxy does not forward {} requests", input.method)))?;
        let connection = self
            .store
            .get(Kind::Connection, connection_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no connection has id `{connection_id}`")))?;
        let auth = match connection.reference("authorization") {
            Some(id) => Some(self.store.get(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?),
            None => None,
        };
        let handler_on = connection.data.get("authorization_handler").and_then(Value::as_bool).unwrap_or(false);
        let mut vars = crate::oauth2::Vars::default();
        vars.extend_pairs(connection.data.get("template_parameters").unwrap_or(&Value::Null));
        if let Some(auth) = &auth {
            vars.extend_pairs(auth.data.get("template_parameters").unwrap_or(&Value::Null));
            if handler_on {
                self.authorization_variables(auth, &mut vars).await?;
            }
        }
        let base = vars
            .render("url", connection.text("url"))
            .map_err(|e| state_error("connection_misconfigured", e.to_string()))?;
        let mut url = format!("{}/{}", base.trim_end_matches('/'), input.path.trim_start_matches('/'));
        let mut query: Vec<String> = input.query.iter().filter(|q| !q.is_empty()).cloned().collect();
        let params =
            crate::oauth2::render_pairs("parameters", connection.data.get("parameters").unwrap_or(&Value::Null), &vars)
                .map_err(|e| state_error("connection_misconfigured", e.to_string()))?;
        if !params.is_empty() {
            query.push(crate::oauth2::encode_form(&params));
        }
        let mut headers: Vec<(String, String)> =
            input.headers.iter().filter(|(k, _)| is_forwarded_header(k)).cloned().collect();
        for (k, v) in
            crate::oauth2::render_pairs("headers", connection.data.get("headers").unwrap_or(&Value::Null), &vars)
                .map_err(|e| state_error("connection_misconfigured", e.to_string()))?
        {
            headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let mut parsed =
            url::Url::parse(&url).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
                state_error("connection_misconfigured", "the connection's url does not render to an http(s) URL")
            })?;
        let mut refreshable = None;
        if let (Some(auth), false) = (&auth, handler_on) {
            let method = input.method.to_ascii_uppercase();
            let sign_input = SignInput {
                method: method.clone(),
                url: parsed.to_string(),
                headers: headers.clone(),
                body: String::from_utf8(input.body.clone()).ok(),
            };
            let applied = self.apply(auth, &method, &parsed, &sign_input).await?;
            if !applied.query.is_empty() {
                parsed.query_pairs_mut().extend_pairs(applied.query.iter());
            }
            for (k, v) in applied.headers {
                headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
                headers.push((k, v));
            }
            if auth.rtype == "oauth2" {
                refreshable = Some(auth.id.clone());
            }
        }
        let body = (!input.body.is_empty()).then(|| input.body.clone());
        Ok(Prepared { request: HttpRequest { method, url: parsed.to_string(), headers, body }, refreshable })
    }

    /// The variables a connection's templates see when it handles the
    /// authorization itself.
    async fn authorization_variables(&self, auth: &Record, vars: &mut crate::oauth2::Vars) -> Result<(), Error> {
        check_usable(auth)?;
        let secret = |field: &str| -> Result<String, Error> {
            Ok(self.open_secret(auth, field)?.map(|s| s.expose_secret().to_owned()).unwrap_or_default())
        };
        match auth.rtype.as_str() {
            "oauth2" => {
                let token = self.fresh_token(&auth.id).await?;
                let answer: Value = serde_json::from_str(&token.0).map_err(|e| Error::Internal(e.to_string()))?;
                vars.set("access_token", answer["access_token"].as_str().unwrap_or_default());
                vars.set("token_type", answer["token_type"].as_str().unwrap_or_default());
            }
            "basic" => {
                let (user, password) = (secret("username")?, secret("password")?);
                vars.set("basic_auth", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
                vars.set("username", user).set("password", password);
            }
            "api_key" => {
                vars.set("key_value", secret("key_value")?);
            }
            "oauth1" => {
                vars.set("oauth_token", secret("access_token")?)
                    .set("oauth_token_secret", secret("access_token_secret")?);
            }
            _ => {}
        }
        Ok(())
    }

    /// After a 401 from the remote API: refresh now, once.
    pub async fn refresh_after_unauthorized(&self, id: &Id) -> Result<(), Error> {
        self.refresh(id).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_hex_and_differ() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
