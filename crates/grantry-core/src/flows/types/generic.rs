//! Generic callback authorizations (docs/concepts.md §5): the browser goes to
//! the provider with Grantry's callback URL, and the callback's parameters
//! named in `capture` are sealed for connection templates.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::AuthFlow;
use crate::flows::apply::{Applied, Outgoing};
use crate::flows::exchange::Failure;
use crate::flows::pending::random_token;
use crate::flows::{
    authorize_base, authorize_parameters, provider_settings, Authorized, CallbackOutcome, Flows, Parts, Start,
};
use crate::oauth2::{ProviderError, Vars};
use crate::ports::PendingState;
use crate::{AuthorizationType, Error, Kind, Record, Status};

pub(crate) struct Generic;

#[async_trait]
impl AuthFlow for Generic {
    async fn authorize(&self, flows: &Flows, auth: Record, start: &Start<'_>) -> Result<Authorized, Error> {
        flows.authorize_generic(flows.load_parts(auth).await?, start).await
    }

    async fn callback(
        &self,
        flows: &Flows,
        auth: Record,
        _pending: &PendingState,
        params: &[(String, String)],
        outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        flows.callback_generic(auth, params, outcome).await
    }

    /// It adds nothing itself: its captured values are for connection templates.
    async fn apply(&self, _flows: &Flows, _auth: &Record, _request: &Outgoing<'_>) -> Result<Applied, Error> {
        Ok(Applied::default())
    }

    async fn variables(&self, _flows: &Flows, _auth: &Record, _vars: &mut Vars) -> Result<(), Error> {
        Ok(())
    }

    fn callback_key<'a>(&self, auth: &'a Record) -> &'a str {
        match auth.text("callback_key") {
            "" => "redirect_uri",
            key => key,
        }
    }
}

impl Flows {
    pub(crate) async fn authorize_generic(&self, parts: Parts, start: &Start<'_>) -> Result<Authorized, Error> {
        // A generic client may have no identifier or secret: its templates decide what to send.
        let (key, secret) =
            (self.optional_secret(&parts.client, "identifier")?, self.optional_secret(&parts.client, "secret")?);
        let state = random_token();
        // The state rides in the callback URL's path, so it survives providers
        // that append their own query string.
        let callback = format!("{}/{state}", self.callback_url());
        let mut vars = self.vars(&parts, &key, &secret);
        let callback_key = Generic.callback_key(&parts.auth);
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
            return self.callback_failed(&mut auth, failure, Status::Unauthorized, outcome).await;
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
        for mut auth in self.records.stored_all(Kind::Authorization).await? {
            let pairs = auth.data.get("template_parameters").and_then(Value::as_array).cloned().unwrap_or_default();
            let (old, kept): (Vec<Value>, Vec<Value>) = pairs.into_iter().partition(|p| p["description"] == MARK);
            if auth.authorization_type() != Some(AuthorizationType::Generic) || old.is_empty() {
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
    pub(crate) async fn captured(&self, auth: &Record) -> Result<Value, Error> {
        Ok(match self.open_secret(auth, "captured")? {
            Some(text) => serde_json::from_str(text.expose_secret()).unwrap_or(Value::Object(Map::new())),
            None => Value::Object(Map::new()),
        })
    }
}
