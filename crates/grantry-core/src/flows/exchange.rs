//! Token requests (docs/concepts.md §4.3): building and sending them with
//! retries, reading the answers, storing what they give, and recording why
//! they failed, scrubbed of every secret.

use base64::Engine as _;
use secrecy::ExposeSecret;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::{label_of, provider_settings, set_status, Flows, Parts};
use crate::oauth2::STANDARD_POINTERS;
use crate::oauth2::{self, ClientAuth, Grant, Pointers, ProviderError, TokenSet, Vars};
use crate::ports::{seal_context, HttpRequest, HttpResponse, SendError};
use crate::scrub::Scrubber;
use crate::template::Position;
use crate::{timestamp, Error, NotificationLevel, Record, RefreshStrategy, Status};

/// Why a token request did not give tokens.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The provider refused (RFC 6749 §5.2 error).
    Provider(ProviderError),
    /// Unreachable, timed out or 5xx.
    Transient(String),
    /// Grantry's own records cannot make the request (template, address).
    Config(String),
    /// A template went over its render budget.
    TooExpensive(String),
    /// The answer came but could not be read (larger than allowed).
    Unreadable(String),
}

impl From<oauth2::FlowError> for Failure {
    fn from(e: oauth2::FlowError) -> Failure {
        match e {
            oauth2::FlowError::TooExpensive(m) => Failure::TooExpensive(m),
            other => Failure::Config(other.to_string()),
        }
    }
}

impl Failure {
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Provider(e) => e.message(),
            Failure::Transient(m) => format!("temporarily_unavailable: {m}"),
            Failure::Config(m) => format!("configuration: {m}"),
            Failure::TooExpensive(m) => format!("template_too_expensive: {m}"),
            Failure::Unreadable(m) => format!("invalid_response: {m}"),
        }
    }
    pub(crate) fn to_json(&self) -> Value {
        let (error, description) = match self {
            Failure::Provider(e) => return e.to_json(),
            Failure::Transient(m) => ("temporarily_unavailable", m),
            Failure::Config(m) => ("configuration", m),
            Failure::TooExpensive(m) => ("template_too_expensive", m),
            Failure::Unreadable(m) => ("invalid_response", m),
        };
        let description: String = description.chars().take(oauth2::MAX_ERROR_DESCRIPTION).collect();
        json!({"error": error, "error_description": description})
    }
    pub(crate) fn scrubbed(self, scrubber: &Scrubber) -> Failure {
        match self {
            Failure::Provider(mut e) => {
                e.scrub(scrubber);
                Failure::Provider(e)
            }
            Failure::Transient(m) => Failure::Transient(scrubber.scrub(&m)),
            Failure::Config(m) => Failure::Config(scrubber.scrub(&m)),
            Failure::TooExpensive(m) => Failure::TooExpensive(scrubber.scrub(&m)),
            Failure::Unreadable(m) => Failure::Unreadable(scrubber.scrub(&m)),
        }
    }

    /// Whether the answer said nothing about the grant: it could not be read,
    /// or it was a success without a usable token. A refresh that gets one
    /// keeps the refresh token and tries again later (docs/concepts.md §4.5);
    /// only a refusal ends the grant.
    pub(crate) fn is_unusable_answer(&self) -> bool {
        match self {
            Failure::Unreadable(_) => true,
            Failure::Provider(e) => e.error == "invalid_response" && e.status < 400,
            Failure::Transient(_) | Failure::Config(_) | Failure::TooExpensive(_) => false,
        }
    }
}

/// Every value a request carried that may be a secret: the parameters but
/// for the few that never are, and the credentials of its headers.
pub(crate) fn request_scrubber(request: &HttpRequest) -> Scrubber {
    const PUBLIC: &[&str] =
        &["grant_type", "redirect_uri", "scope", "token_type_hint", "response_type", "code_challenge_method"];
    let mut scrubber = Scrubber::default();
    let body = request.body.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
    let query = url::Url::parse(&request.url).ok().and_then(|u| u.query().map(str::to_owned)).unwrap_or_default();
    for source in [body.as_ref(), query.as_str()] {
        for (key, value) in url::form_urlencoded::parse(source.as_bytes()) {
            if !PUBLIC.contains(&key.as_ref()) {
                scrubber.add(&value);
            }
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(source) {
            for value in map.values().filter_map(Value::as_str) {
                scrubber.add(value);
            }
        }
    }
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("accept") || name.eq_ignore_ascii_case("content-type") {
            continue;
        }
        scrubber.add(value);
        if let Some((_, credential)) = value.split_once(' ') {
            scrubber.add(credential);
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credential) {
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                if let Some((user, password)) = decoded.split_once(':') {
                    scrubber.add(user).add(password);
                    let plain = |s: &str| {
                        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
                    };
                    for part in [plain(user), plain(password)].into_iter().flatten() {
                        scrubber.add(&part);
                    }
                }
            }
        }
    }
    scrubber
}

impl Flows {
    pub(crate) async fn refresh_call(
        &self,
        parts: &Parts,
        identifier: &SecretString,
        secret: &SecretString,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, Failure> {
        let mut vars = self.vars(parts, identifier, secret);
        vars.set_secret("refresh_token", refresh_token.clone());
        if let Ok(Some(access)) = self.open_secret(&parts.auth, "access_token") {
            vars.set_secret("access_token", access);
        }
        vars.set("token_type", parts.auth.text("token_type"));
        if parts.provider.refresh_strategy() == RefreshStrategy::Custom {
            let spec = parts.provider.data.get("refresh_request").cloned().unwrap_or(Value::Null);
            let hosts = provider_settings(&parts.provider).hosts;
            let request = oauth2::custom_refresh_request(&spec, &vars, &hosts).map_err(Failure::from)?;
            let pointers = Pointers {
                access_token: spec["access_token_pointer"].as_str().unwrap_or("/access_token"),
                expires_in: spec["expires_in_pointer"].as_str().unwrap_or("/expires_in"),
                refresh_token: spec["refresh_token_pointer"].as_str().unwrap_or("/refresh_token"),
                token_type: spec["token_type_pointer"].as_str().unwrap_or("/token_type"),
            };
            return self.send_for_tokens(request, &pointers).await;
        }
        let grant = Grant::RefreshToken { refresh_token: refresh_token.expose_secret() };
        self.token_call(parts, identifier, secret, &grant, &vars, &STANDARD_POINTERS).await
    }

    pub(crate) async fn client_credentials_grant(
        &self,
        parts: &Parts,
        identifier: &SecretString,
        secret: &SecretString,
        vars: &Vars,
    ) -> Result<TokenSet, Failure> {
        let scope = self.scope(parts, vars).map_err(|e| Failure::Config(e.to_string()))?;
        self.token_call(
            parts,
            identifier,
            secret,
            &Grant::ClientCredentials { scope: &scope },
            vars,
            &STANDARD_POINTERS,
        )
        .await
    }

    pub(crate) async fn token_call(
        &self,
        parts: &Parts,
        identifier: &SecretString,
        secret: &SecretString,
        grant: &Grant<'_>,
        vars: &Vars,
        pointers: &Pointers<'_>,
    ) -> Result<TokenSet, Failure> {
        let settings = provider_settings(&parts.provider);
        let client = ClientAuth {
            method: parts.provider.auth_method(),
            identifier: identifier.expose_secret(),
            secret: secret.expose_secret(),
        };
        let pairs = |field: &str| {
            let list = parts.client.data.get(field).unwrap_or(&Value::Null);
            oauth2::render_pairs(field, list, vars, Position::Request).map_err(Failure::from)
        };
        let (params, headers) = (pairs("request_token_parameters")?, pairs("request_token_headers")?);
        let request =
            oauth2::token_request(&settings, &client, grant, &params, &headers, vars).map_err(Failure::from)?;
        self.send_for_tokens(request, pointers).await
    }

    /// Sends a token request; network faults and 5xx are retried with backoff.
    /// A failure is scrubbed of every value the request carried.
    pub(crate) async fn send_for_tokens(
        &self,
        request: HttpRequest,
        pointers: &Pointers<'_>,
    ) -> Result<TokenSet, Failure> {
        let mut attempt = 0;
        loop {
            let outcome = match self.http.send(request.clone()).await {
                Ok(response) => self.read_tokens(&response, pointers),
                Err(SendError::Transient(m)) => Err(Failure::Transient(m)),
                Err(SendError::Refused(m)) => Err(Failure::Config(m)),
                Err(SendError::Unreadable(m)) => Err(Failure::Unreadable(m)),
            };
            match outcome {
                Err(Failure::Transient(_)) if attempt < self.settings.retry_backoff.len() => {
                    self.clock.sleep(self.settings.retry_backoff[attempt]).await;
                    attempt += 1;
                }
                Err(failure) => return Err(failure.scrubbed(&request_scrubber(&request))),
                ok => return ok,
            }
        }
    }

    pub(crate) fn read_tokens(&self, response: &HttpResponse, pointers: &Pointers<'_>) -> Result<TokenSet, Failure> {
        oauth2::parse_token_response(response, pointers, self.clock.now()).map_err(|e| {
            if e.status >= 500 {
                Failure::Transient(format!("the provider answered HTTP {}", e.status))
            } else {
                Failure::Provider(e)
            }
        })
    }

    /// Stores a token answer in one write: a new refresh token replaces the
    /// old one in the same update that stores the new access token.
    pub(crate) async fn store_tokens(&self, auth: &mut Record, tokens: TokenSet, new_grant: bool) -> Result<(), Error> {
        let seal = |field: &str, value: &str| self.sealer.seal(value, &seal_context(&auth.id, field));
        let mut sealed = vec![
            ("access_token", seal("access_token", tokens.access_token.expose_secret())?),
            ("token_response", seal("token_response", tokens.raw.expose_secret())?),
        ];
        if let Some(r) = &tokens.refresh_token {
            sealed.push(("refresh_token", seal("refresh_token", r.expose_secret())?));
        }
        if let Some(t) = &tokens.id_token {
            sealed.push(("id_token", seal("id_token", t.expose_secret())?));
        }
        for (field, value) in sealed {
            auth.secrets.insert(field.to_owned(), value);
        }
        auth.data.insert("token_type".into(), json!(tokens.token_type));
        auth.data.insert("expires_at".into(), tokens.expires_at.map(|t| json!(timestamp(t))).unwrap_or(Value::Null));
        if let Some(scope) = tokens.granted_scope {
            auth.data.insert("granted_scope".into(), json!(scope));
        }
        self.save_authorized(auth, new_grant).await?;
        for warning in tokens.warnings {
            self.notify(&auth.id, NotificationLevel::Warning, format!("authorization {}: {warning}", label_of(auth)))
                .await;
        }
        Ok(())
    }

    /// Writes an authorization that now holds a grant. `authorized_at` says
    /// when the grant was obtained, so a refresh leaves it as it was.
    pub(crate) async fn save_authorized(&self, auth: &mut Record, new_grant: bool) -> Result<(), Error> {
        let now = self.clock.now();
        if new_grant || !auth.data.contains_key("authorized_at") {
            auth.data.insert("authorized_at".into(), json!(timestamp(now)));
        }
        auth.data.remove("last_error");
        set_status(auth, Status::Authorized);
        auth.updated_at = now;
        self.save(auth).await
    }

    /// Records a failure on the authorization and raises a notification, both
    /// scrubbed of every secret of the authorization and its client; the
    /// scrubbed message is what callers may return.
    pub(crate) async fn record_failure(
        &self,
        auth: &mut Record,
        failure: &Failure,
        status: Status,
    ) -> Result<String, Error> {
        let failure = failure.clone().scrubbed(&self.scrubber(&[&*auth]).await);
        auth.data.insert("last_error".into(), failure.to_json());
        set_status(auth, status);
        auth.updated_at = self.clock.now();
        self.save(auth).await?;
        let message = failure.message();
        let note = format!(
            "authorization {} {}: {message}",
            label_of(auth),
            if status == Status::Failed { "failed" } else { "was not granted" },
        );
        self.notify(&auth.id, NotificationLevel::Error, note).await;
        Ok(message)
    }
}
