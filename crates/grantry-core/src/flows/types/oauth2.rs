//! OAuth 2.0 authorizations (docs/concepts.md §4): the authorization code
//! grant with PKCE, client credentials, token-based apply, revocation.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::AuthFlow;
use crate::flows::apply::{Applied, Outgoing};
use crate::flows::exchange::{request_scrubber, Failure};
use crate::flows::pending::random_token;
use crate::flows::{
    authorize_parameters, misconfigured, provider_settings, Authorized, CallbackOutcome, Flows, Parts, Start,
};
use crate::oauth2::{self, ClientAuth, Grant, ProviderError, Vars, STANDARD_POINTERS};
use crate::ports::{HttpMethod, HttpRequest, PendingState};
use crate::{Error, GrantType, Kind, NotificationLevel, Record, Status};

pub(crate) struct OAuth2;

#[async_trait]
impl AuthFlow for OAuth2 {
    async fn authorize(&self, flows: &Flows, auth: Record, start: &Start<'_>) -> Result<Authorized, Error> {
        let id = auth.id.clone();
        let parts = flows.load_parts(auth).await?;
        let (identifier, secret) = flows.client_credentials(&parts.client)?;
        let vars = flows.vars(&parts, &identifier, &secret);
        if parts.auth.grant_type() == GrantType::ClientCredentials {
            let mut auth = parts.auth.clone();
            let result = flows.client_credentials_grant(&parts, &identifier, &secret, &vars).await;
            match result {
                Ok(tokens) => flows.store_tokens(&mut auth, tokens, true).await?,
                Err(failure) => {
                    flows.record_failure(&mut auth, &failure, Status::Failed).await?;
                }
            }
            return Ok(Authorized::Record(flows.records.view_of(Kind::Authorization, &id).await?));
        }
        let settings = provider_settings(&parts.provider);
        let scope = flows.scope(&parts, &vars)?;
        let extra = authorize_parameters(&parts.auth, &vars)?;
        let state = random_token();
        let verifier = settings.pkce.then(random_token);
        let redirect_uri = flows.callback_url();
        let url = oauth2::authorize_url(
            &oauth2::AuthorizeRequest {
                provider: &settings,
                client_id: identifier.expose_secret(),
                redirect_uri: &redirect_uri,
                scope: &scope,
                state: &state,
                code_verifier: verifier.as_deref(),
                extra: &extra,
            },
            &vars,
        )
        .map_err(misconfigured)?;
        flows.keep_pending(&state, &id, verifier.as_deref(), start).await?;
        Ok(Authorized::Redirect(url))
    }

    async fn callback(
        &self,
        flows: &Flows,
        auth: Record,
        pending: &PendingState,
        params: &[(String, String)],
        mut outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let parts = flows.load_parts(auth).await?;
        let mut auth = parts.auth.clone();
        if let Some(error) = get("error") {
            let failure = Failure::Provider(ProviderError::new(0, error, get("error_description")));
            return flows.callback_failed(&mut auth, failure, Status::Unauthorized, outcome).await;
        }
        let Some(code) = get("code").filter(|c| !c.is_empty()) else {
            let failure = Failure::Provider(ProviderError::new(
                0,
                "invalid_request",
                Some("the callback carries neither code nor error"),
            ));
            return flows.callback_failed(&mut auth, failure, Status::Failed, outcome).await;
        };
        let verifier = match &pending.code_verifier {
            Some(sealed) => Some(flows.sealer.open(sealed, &format!("state/{}", pending.state_hash))?),
            None => None,
        };
        let (identifier, secret) = flows.client_credentials(&parts.client)?;
        // What the provider sent back never becomes a variable (docs/concepts.md §4.2).
        let vars = flows.vars(&parts, &identifier, &secret);
        let redirect_uri = flows.callback_url();
        let grant = Grant::AuthorizationCode {
            code,
            redirect_uri: &redirect_uri,
            code_verifier: verifier.as_ref().map(|v| v.expose_secret()),
        };
        let result = flows.token_call(&parts, &identifier, &secret, &grant, &vars, &STANDARD_POINTERS).await;
        match result {
            Ok(tokens) => {
                flows.store_tokens(&mut auth, tokens, true).await?;
                outcome.authorized = true;
            }
            Err(failure) => return flows.callback_failed(&mut auth, failure, Status::Failed, outcome).await,
        }
        Ok(outcome)
    }

    /// Revokes at the provider when it can (a failure is recorded, never
    /// blocks), then clears every token field.
    async fn cancel(&self, flows: &Flows, auth: Record) -> Result<(), Error> {
        let parts = flows.load_parts(auth).await?;
        let auth = parts.auth.clone();
        let revocation = parts.provider.text("revocation_endpoint").to_owned();
        let token = match flows.open_secret(&auth, "refresh_token")? {
            Some(t) => Some((t, "refresh_token")),
            None => flows.open_secret(&auth, "access_token")?.map(|t| (t, "access_token")),
        };
        if let (false, Some((token, hint))) = (revocation.is_empty(), token) {
            if let Err(message) = flows.revoke(&parts, &revocation, token.expose_secret(), hint).await {
                flows
                    .notify(
                        &parts.auth.id,
                        NotificationLevel::Warning,
                        format!("revoking the token of {} at the provider failed: {message}", auth.name),
                    )
                    .await;
            }
        }
        flows.forget_grant(auth).await
    }

    async fn apply(&self, flows: &Flows, auth: &Record, _request: &Outgoing<'_>) -> Result<Applied, Error> {
        let token = flows.token(&auth.id).await?;
        Ok(Applied::header("Authorization", token.authorization_header()))
    }

    async fn variables(&self, flows: &Flows, auth: &Record, vars: &mut Vars) -> Result<(), Error> {
        let token = flows.token(&auth.id).await?;
        vars.set_secret("access_token", token.access_token());
        vars.set("token_type", token.token_type());
        Ok(())
    }
}

impl Flows {
    pub(crate) async fn revoke(&self, parts: &Parts, endpoint: &str, token: &str, hint: &str) -> Result<(), String> {
        let (identifier, secret) = self.client_credentials(&parts.client).map_err(|e| e.to_string())?;
        let vars = self.vars(parts, &identifier, &secret);
        let url = vars
            .render_url("revocation_endpoint", endpoint, &provider_settings(&parts.provider).hosts)
            .map_err(|e| e.to_string())?;
        let mut params = vec![("token".to_owned(), token.to_owned()), ("token_type_hint".to_owned(), hint.to_owned())];
        let mut headers = vec![("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
        let client = ClientAuth {
            method: parts.provider.auth_method(),
            identifier: identifier.expose_secret(),
            secret: secret.expose_secret(),
        };
        oauth2::client_authentication(&client, &mut params, &mut headers);
        let request = HttpRequest {
            method: HttpMethod::Post,
            url,
            headers,
            body: Some(oauth2::encode_form(&params).into_bytes()),
        };
        let scrubber = request_scrubber(&request);
        match self.http.send(request).await {
            Ok(r) if r.status < 400 => Ok(()),
            Ok(r) => Err(format!("the revocation endpoint answered HTTP {}", r.status)),
            Err(e) => Err(scrubber.scrub(&e.to_string())),
        }
    }
}
