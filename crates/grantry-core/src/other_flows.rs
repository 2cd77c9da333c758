//! OAuth 1.0a (RFC 5849) and generic callback authorizations (SPEC §5), and
//! applying any authorization to a request (SPEC §7).

use base64::Engine as _;
use rand::Rng as _;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use crate::flows::{
    authorize_parameters, check_usable, misconfigured, not_found, provider_settings, random_token, state_error,
    template_error, Authorized, CallbackOutcome, Failure, Flows, Parts, Start,
};
use crate::oauth1::{self, SignatureMethod, Signer};
use crate::oauth2::{ProviderError, Vars};
use crate::ports::PendingState;
use crate::ports::{HttpMethod, HttpRequest, SendError};
use crate::template::{HostParameter, Position};
use crate::{Error, Id, Kind, Record};

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

/// The rendered authorization endpoint of an OAuth 1.0a or generic provider.
fn authorize_base(vars: &Vars, parts: &Parts, hosts: &[HostParameter]) -> Result<url::Url, Error> {
    let base = vars
        .render_url("authorization_endpoint", parts.provider.text("authorization_endpoint"), hosts)
        .map_err(misconfigured)?;
    url::Url::parse(&base).map_err(|e| state_error("provider_misconfigured", format!("authorization_endpoint: {e}")))
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
            let advice = form_field(&form, "oauth_problem_advice");
            return Err(Failure::Provider(ProviderError::new(response.status, &problem, advice.as_deref())));
        }
        match (form_field(&form, "oauth_token"), form_field(&form, "oauth_token_secret")) {
            (Some(token), Some(secret)) => Ok((token, secret)),
            _ => Err(Failure::Provider(ProviderError::new(
                response.status,
                "invalid_response",
                Some(&format!("the {what} answer has no oauth_token and oauth_token_secret")),
            ))),
        }
    }

    pub(crate) async fn authorize_oauth1(&self, parts: Parts, start: &Start<'_>) -> Result<Authorized, Error> {
        let (key, secret) = self.client_credentials(&parts.client)?;
        let vars = self.vars(&parts, &key, &secret);
        let hosts = provider_settings(&parts.provider).hosts;
        let endpoint = vars
            .render_url("request_token_endpoint", parts.provider.text("request_token_endpoint"), &hosts)
            .map_err(misconfigured)?;
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
                let message = self.record_failure(&mut auth, &failure, "failed").await?;
                return Err(state_error("authorization_failed", format!("the request token call failed: {message}")));
            }
        };
        // The request token is what the provider sends back, so it keys the pending state.
        self.keep_pending(&token, &auth.id, Some(&token_secret), start).await?;
        let mut url = authorize_base(&vars, &parts, &hosts)?;
        url.query_pairs_mut().append_pair("oauth_token", &token);
        let extra = authorize_parameters(&parts.auth, &vars)?;
        url.query_pairs_mut().extend_pairs(extra.iter().filter(|(k, _)| !k.starts_with("oauth_")));
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
            let failure = Failure::Provider(ProviderError::new(
                0,
                "access_denied",
                Some("the provider sent no oauth_verifier: the resource owner did not grant access"),
            ));
            return self.callback_failed(&mut auth, failure, "unauthorized", outcome).await;
        };
        let token_secret = match &pending.code_verifier {
            Some(sealed) => self.sealer.open(sealed, &format!("state/{}", pending.state_hash))?,
            None => return Err(Error::Internal("a pending OAuth 1.0a request without its token secret".into())),
        };
        let (key, secret) = self.client_credentials(&parts.client)?;
        let vars = self.vars(&parts, &key, &secret);
        let endpoint = vars
            .render_url(
                "token_endpoint",
                parts.provider.text("token_endpoint"),
                &provider_settings(&parts.provider).hosts,
            )
            .map_err(misconfigured)?;
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
            Err(failure) => return self.callback_failed(&mut auth, failure, "failed", outcome).await,
        };
        for (field, value) in [("access_token", &access), ("access_token_secret", &access_secret)] {
            auth.secrets
                .insert(field.to_owned(), self.sealer.seal(value, &crate::ports::seal_context(&auth.id, field))?);
        }
        match get("realmId") {
            Some(realm) => auth.data.insert("realm_id".into(), json!(realm)),
            None => auth.data.remove("realm_id"),
        };
        self.save_authorized(&mut auth, true).await?;
        outcome.authorized = true;
        Ok(outcome)
    }

    pub(crate) async fn authorize_generic(&self, parts: Parts, start: &Start<'_>) -> Result<Authorized, Error> {
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
        let mut url = authorize_base(&vars, &parts, &provider_settings(&parts.provider).hosts)?;
        url.query_pairs_mut().append_pair(callback_key, &callback);
        let extra = authorize_parameters(&parts.auth, &vars)?;
        url.query_pairs_mut().extend_pairs(extra.iter().filter(|(k, _)| k != callback_key));
        self.keep_pending(&state, &parts.auth.id, None, start).await?;
        Ok(Authorized::Redirect(url.to_string()))
    }

    /// The callback of a generic authorization: the parameters named in
    /// `capture` are sealed into the secret field `captured` (connection
    /// templates read them as `{{callback.<name>}}`), and it is authorized.
    pub(crate) async fn callback_generic(
        &self,
        mut auth: Record,
        params: &[(String, String)],
        outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if let Some(error) = get("error") {
            let failure = Failure::Provider(ProviderError::new(0, error, get("error_description")));
            return self.callback_failed(&mut auth, failure, "unauthorized", outcome).await;
        }
        let mut captured = Map::new();
        for name in auth.data.get("capture").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if let Some(value) = get(name) {
                captured.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        let sealed = self
            .sealer
            .seal(&Value::Object(captured).to_string(), &crate::ports::seal_context(&auth.id, "captured"))?;
        auth.secrets.insert("captured".into(), sealed);
        self.save_authorized(&mut auth, true).await?;
        Ok(CallbackOutcome { authorized: true, ..outcome })
    }

    /// Generic authorizations authorized before captured values were sealed
    /// keep them as template parameters marked "captured from the callback":
    /// this seals them into `captured`, once per database. Says how many
    /// authorizations it changed.
    pub async fn seal_captured_parameters(&self) -> Result<u64, Error> {
        const MARK: &str = "captured from the callback";
        if self.store.meta_get("captured_sealed").await?.is_some() {
            return Ok(0);
        }
        let mut changed = 0;
        for mut auth in self.store.find_all(Kind::Authorization, &[]).await? {
            let pairs = auth.data.get("template_parameters").and_then(Value::as_array).cloned().unwrap_or_default();
            let (old, kept): (Vec<Value>, Vec<Value>) = pairs.into_iter().partition(|p| p["description"] == MARK);
            if auth.rtype != "generic" || old.is_empty() {
                continue;
            }
            let mut captured = match self.captured(&auth).await? {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            for pair in old {
                if let (Some(k), Some(v)) = (pair["key"].as_str(), pair["value"].as_str()) {
                    captured.entry(k.to_owned()).or_insert_with(|| Value::String(v.to_owned()));
                }
            }
            let context = crate::ports::seal_context(&auth.id, "captured");
            auth.secrets.insert("captured".into(), self.sealer.seal(&Value::Object(captured).to_string(), &context)?);
            auth.data.insert("template_parameters".into(), Value::Array(kept));
            self.save(&auth).await?;
            changed += 1;
        }
        self.store.meta_set("captured_sealed", "1").await?;
        Ok(changed)
    }

    /// The values a generic callback captured, as the `callback` variable.
    async fn captured(&self, auth: &Record) -> Result<Value, Error> {
        Ok(match self.open_secret(auth, "captured")? {
            Some(text) => serde_json::from_str(text.expose_secret()).unwrap_or(Value::Object(Map::new())),
            None => Value::Object(Map::new()),
        })
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
/// remote's cookies stay behind too (issue 8, "Proxy").
pub fn is_forwarded_header(name: &str) -> bool {
    !NOT_FORWARDED.iter().any(|h| h.eq_ignore_ascii_case(name))
        && !name.to_ascii_lowercase().starts_with("x-forwarded-")
        && !name.eq_ignore_ascii_case("set-cookie")
        && !name.eq_ignore_ascii_case("set-cookie2")
}

/// The caller's headers to forward: not the ones of `is_forwarded_header`,
/// nor any that the `Connection` header names as belonging to this hop.
fn forwarded_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
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
fn checked_path(path: &str) -> Result<&str, Error> {
    let decoded = percent_decode(path);
    if decoded.split(['/', '\\']).any(|segment| segment == "." || segment == "..") {
        return Err(Error::BadRequest(
            "the proxied path may not hold `.` or `..` segments (in any encoding); it stays under the connection's URL"
                .into(),
        ));
    }
    Ok(path.trim_start_matches('/'))
}

fn percent_decode(text: &str) -> String {
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
    /// Builds the request a connection sends for a caller (SPEC §7): the
    /// connection's URL, headers and parameters rendered, the caller's path,
    /// query, headers and body, and the authorization applied.
    pub async fn prepare_proxy(&self, connection_id: &Id, input: &ProxyInput) -> Result<Prepared, Error> {
        let method = HttpMethod::from_name(&input.method)
            .ok_or_else(|| Error::BadRequest(format!("the proxy does not forward {} requests", input.method)))?;
        let path = checked_path(&input.path)?;
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
        let mut vars = Vars::default();
        vars.extend_pairs(connection.data.get("template_parameters").unwrap_or(&Value::Null));
        if let Some(auth) = &auth {
            vars.extend_pairs(auth.data.get("template_parameters").unwrap_or(&Value::Null));
            if auth.rtype == "generic" {
                vars.set_value("callback", self.captured(auth).await?);
            }
            if handler_on {
                self.authorization_variables(auth, &mut vars).await?;
            }
        }
        let misconfigured =
            |e: crate::oauth2::FlowError| template_error(e, |m| state_error("connection_misconfigured", m));
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
                state_error("connection_misconfigured", "the connection's url does not render to an http(s) URL")
            })?;
        if !parsed.path().starts_with(&base_path) {
            return Err(Error::BadRequest("the proxied path leaves the connection's URL".into()));
        }
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
    async fn authorization_variables(&self, auth: &Record, vars: &mut Vars) -> Result<(), Error> {
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

    #[test]
    fn nonces_are_hex_and_differ() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
