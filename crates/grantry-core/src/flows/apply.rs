//! Applying an authorization to a request (docs/concepts.md §7.1): `sign`
//! for any type, without the integration knowing the type.

use std::fmt;

use serde_json::{json, Map, Value};

use super::{check_usable, types, Flows};
use crate::access::{Action, Caller};
use crate::{Error, Id, Record};

/// A request an integration wants Grantry to authorize.
pub struct SignInput {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl fmt::Debug for SignInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SignInput")
            .field("method", &self.method)
            .field("url", &self.url.split('?').next().unwrap_or(""))
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// What to add to a request: headers and query parameters. They carry live
/// credentials, so `Debug` shows only their names.
#[derive(Default, PartialEq, Eq)]
pub struct Applied {
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        f.debug_struct("Applied").field("headers", &names(&self.headers)).field("query", &names(&self.query)).finish()
    }
}

impl Applied {
    pub(crate) fn header(name: &str, value: &str) -> Applied {
        Applied { headers: vec![(name.to_owned(), value.to_owned())], query: Vec::new() }
    }
    pub(crate) fn query(name: &str, value: &str) -> Applied {
        Applied { headers: Vec::new(), query: vec![(name.to_owned(), value.to_owned())] }
    }

    pub fn to_json(&self) -> Value {
        let map = |pairs: &[(String, String)]| -> Map<String, Value> {
            pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
        };
        json!({"headers": map(&self.headers), "query": map(&self.query)})
    }
}

/// The request an authorization is applied to.
pub(crate) struct Outgoing<'a> {
    pub method: &'a str,
    pub url: &'a url::Url,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a str>,
}

impl Flows {
    /// What to add to a request so that the remote API accepts it on behalf of
    /// this authorization, whatever its type (docs/concepts.md §7.1).
    pub async fn sign(&self, caller: &Caller, id: &Id, input: &SignInput) -> Result<Applied, Error> {
        caller.check(Action::UseSecret)?;
        let url = url::Url::parse(&input.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::field("url", "must be an absolute http:// or https:// URL"))?;
        let method = input.method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::field("method", "must be an HTTP method such as GET or POST"));
        }
        let auth = self.authorization(id).await?;
        let request = Outgoing { method: &method, url: &url, headers: &input.headers, body: input.body.as_deref() };
        self.apply(&auth, &request).await
    }

    /// Applies a usable authorization to a request, the way its type does.
    pub(crate) async fn apply(&self, auth: &Record, request: &Outgoing<'_>) -> Result<Applied, Error> {
        check_usable(auth)?;
        types::of_record(auth)?.apply(self, auth, request).await
    }
}
