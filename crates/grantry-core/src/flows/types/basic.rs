//! Basic authorizations (RFC 7617; docs/concepts.md §5): a user name and a
//! password, typed in, sent as `Authorization: Basic`.

use async_trait::async_trait;
use base64::Engine as _;
use secrecy::ExposeSecret;

use super::AuthFlow;
use crate::flows::apply::{Applied, Outgoing};
use crate::flows::Flows;
use crate::oauth2::Vars;
use crate::{Error, Record};

pub(crate) struct Basic;

#[async_trait]
impl AuthFlow for Basic {
    async fn apply(&self, flows: &Flows, auth: &Record, _request: &Outgoing<'_>) -> Result<Applied, Error> {
        let (user, password) = (flows.required_secret(auth, "username")?, flows.required_secret(auth, "password")?);
        let credentials = secrecy::SecretString::from(format!("{}:{}", user.expose_secret(), password.expose_secret()));
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials.expose_secret());
        Ok(Applied::header("Authorization", &format!("Basic {encoded}")))
    }

    async fn variables(&self, flows: &Flows, auth: &Record, vars: &mut Vars) -> Result<(), Error> {
        let (user, password) = (flows.optional_secret(auth, "username")?, flows.optional_secret(auth, "password")?);
        let pair = format!("{}:{}", user.expose_secret(), password.expose_secret());
        vars.set_secret("basic_auth", base64::engine::general_purpose::STANDARD.encode(pair).into());
        vars.set_secret("username", user).set_secret("password", password);
        Ok(())
    }
}
