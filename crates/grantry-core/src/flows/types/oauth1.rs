//! OAuth 1.0a authorizations (RFC 5849; docs/concepts.md §5): the
//! three-legged flow with request tokens, and signing every request.

use async_trait::async_trait;
use rand::Rng as _;
use secrecy::ExposeSecret;
use serde_json::json;

use super::AuthFlow;
use crate::flows::apply::{Applied, Outgoing};
use crate::flows::exchange::Failure;
use crate::flows::{
    authorize_base, authorize_parameters, form_field, misconfigured, provider_settings, state_error, Authorized,
    CallbackOutcome, Flows, Parts, Start,
};
use crate::oauth1::{self, Signer};
use crate::oauth2::{ProviderError, Vars};
use crate::ports::{HttpMethod, HttpRequest, PendingState, SendError};
use crate::{Error, ErrorCode, Record, Status};

pub(crate) struct OAuth1;

#[async_trait]
impl AuthFlow for OAuth1 {
    async fn authorize(&self, flows: &Flows, auth: Record, start: &Start<'_>) -> Result<Authorized, Error> {
        flows.authorize_oauth1(flows.load_parts(auth).await?, start).await
    }

    async fn callback(
        &self,
        flows: &Flows,
        auth: Record,
        pending: &PendingState,
        params: &[(String, String)],
        outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        flows.callback_oauth1(flows.load_parts(auth).await?, pending, params, outcome).await
    }

    async fn cancel(&self, flows: &Flows, auth: Record) -> Result<(), Error> {
        // RFC 5849 has no revocation: forgetting the token pair is all there is.
        flows.forget_grant(auth).await
    }

    async fn apply(&self, flows: &Flows, auth: &Record, request: &Outgoing<'_>) -> Result<Applied, Error> {
        let parts = flows.load_parts(auth.clone()).await?;
        let (key, consumer_secret) = flows.client_credentials(&parts.client)?;
        let (token, token_secret) =
            (flows.required_secret(auth, "access_token")?, flows.required_secret(auth, "access_token_secret")?);
        let is_form = request.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type")
                && v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
        });
        let (timestamp_now, nonce) = (flows.clock.now().unix_timestamp().to_string(), nonce());
        let signer = Signer {
            consumer_key: key.expose_secret(),
            consumer_secret: consumer_secret.expose_secret(),
            token: Some(token.expose_secret()),
            token_secret: token_secret.expose_secret(),
            method: parts.provider.signature_method(),
            timestamp: &timestamp_now,
            nonce: &nonce,
            realm: None,
            extra: &[],
        };
        let body = request.body.filter(|_| is_form);
        Ok(Applied::header("Authorization", &oauth1::sign(&signer, request.method, request.url, body).authorization))
    }

    async fn variables(&self, flows: &Flows, auth: &Record, vars: &mut Vars) -> Result<(), Error> {
        vars.set_secret("oauth_token", flows.optional_secret(auth, "access_token")?)
            .set_secret("oauth_token_secret", flows.optional_secret(auth, "access_token_secret")?);
        Ok(())
    }

    fn callback_key<'a>(&self, _auth: &'a Record) -> &'a str {
        "oauth_callback"
    }
}

/// 128 random bits as lowercase hex: safe for every provider's nonce rules.
fn nonce() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Flows {
    /// Sends an OAuth 1.0a protocol request (request token, access token) and
    /// reads the token pair of its form-encoded answer.
    pub(crate) async fn oauth1_token_pair(
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
            SendError::Unreadable(m) => Failure::Unreadable(m),
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
            consumer_key: key.expose_secret(),
            consumer_secret: secret.expose_secret(),
            token: None,
            token_secret: "",
            method: parts.provider.signature_method(),
            timestamp: &timestamp_now,
            nonce: &nonce,
            realm: None,
            extra: &extra,
        };
        let mut auth = parts.auth.clone();
        let (token, token_secret) =
            match self.oauth1_token_pair(HttpMethod::Post, &endpoint, &signer, "request token").await {
                Ok(pair) => pair,
                Err(failure) => {
                    let message = self.record_failure(&mut auth, &failure, Status::Failed).await?;
                    return Err(state_error(
                        ErrorCode::AuthorizationFailed,
                        format!("the request token call failed: {message}"),
                    ));
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
            return self.callback_failed(&mut auth, failure, Status::Unauthorized, outcome).await;
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
            consumer_key: key.expose_secret(),
            consumer_secret: secret.expose_secret(),
            token: Some(&token),
            token_secret: token_secret.expose_secret(),
            method: parts.provider.signature_method(),
            timestamp: &timestamp_now,
            nonce: &nonce,
            realm: None,
            extra: &extra,
        };
        let method = HttpMethod::from(parts.provider.token_method());
        let (access, access_secret) = match self.oauth1_token_pair(method, &endpoint, &signer, "access token").await {
            Ok(pair) => pair,
            Err(failure) => return self.callback_failed(&mut auth, failure, Status::Failed, outcome).await,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_hex_and_differ() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
}
