//! API key authorizations (docs/concepts.md §5): one key, typed in, sent as
//! a header or a query parameter named by `key_name`.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::AuthFlow;
use crate::flows::apply::{Applied, Outgoing};
use crate::flows::Flows;
use crate::oauth2::Vars;
use crate::{Error, Placement, Record};

pub(crate) struct ApiKey;

#[async_trait]
impl AuthFlow for ApiKey {
    async fn apply(&self, flows: &Flows, auth: &Record, _request: &Outgoing<'_>) -> Result<Applied, Error> {
        let value = flows.required_secret(auth, "key_value")?;
        let name = auth.text("key_name");
        Ok(match auth.choice("placement", Placement::parse, Placement::Header) {
            Placement::Query => Applied::query(name, value.expose_secret()),
            Placement::Header => Applied::header(name, value.expose_secret()),
        })
    }

    async fn variables(&self, flows: &Flows, auth: &Record, vars: &mut Vars) -> Result<(), Error> {
        vars.set_secret("key_value", flows.optional_secret(auth, "key_value")?);
        Ok(())
    }
}
