//! Reading token answers (docs/concepts.md §4.3): JSON or form, errors in
//! any shape, bounded lifetimes and strings.

use std::fmt;

use secrecy::SecretString;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::*;

/// Where to read the token fields in an answer.
pub struct Pointers<'a> {
    pub access_token: &'a str,
    pub expires_in: &'a str,
    pub refresh_token: &'a str,
    pub token_type: &'a str,
}

pub const STANDARD_POINTERS: Pointers<'static> = Pointers {
    access_token: "/access_token",
    expires_in: "/expires_in",
    refresh_token: "/refresh_token",
    token_type: "/token_type",
};

/// A token answer that Grantry can store.
pub struct TokenSet {
    pub access_token: SecretString,
    pub token_type: String,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    pub granted_scope: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    /// The whole answer, kept sealed for provider-specific fields.
    pub raw: SecretString,
    /// What in the answer Grantry could not use (an expiry out of range).
    pub warnings: Vec<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("id_token", &self.id_token.as_ref().map(|_| ".."))
            .field("granted_scope", &self.granted_scope)
            .field("expires_at", &self.expires_at)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// The longest `error` Grantry keeps of a provider's answer.
pub const MAX_ERROR: usize = 200;

/// The longest `error_description` (and `error_uri`) kept.
pub const MAX_ERROR_DESCRIPTION: usize = 500;

/// The longest token lifetime taken as given: longer ones are an unknown expiry.
pub(super) const MAX_LIFETIME_SECONDS: f64 = 100.0 * 366.0 * 86_400.0;

/// How far a provider's `created_at` may be from Grantry's clock to be believed.
pub(super) const MAX_CLOCK_SKEW: time::Duration = time::Duration::days(1);

/// The provider refused, with its `error`, `error_description` and `error_uri`
/// (RFC 6749 §5.2). A provider's answer is data: only these strings, cut to
/// length and without control characters, are kept (docs/concepts.md §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub status: u16,
    pub error: String,
    pub description: Option<String>,
    pub uri: Option<String>,
}

/// At most `max` characters of `text`, control characters dropped.
pub(super) fn bounded(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl ProviderError {
    pub fn new(status: u16, error: &str, description: Option<&str>) -> ProviderError {
        ProviderError {
            status,
            error: bounded(error, MAX_ERROR),
            description: description.map(|d| bounded(d, MAX_ERROR_DESCRIPTION)),
            uri: None,
        }
    }
    pub fn to_json(&self) -> Value {
        let mut out =
            serde_json::json!({"error": self.error, "error_description": self.description, "status": self.status});
        if let Some(uri) = &self.uri {
            out["error_uri"] = Value::String(uri.clone());
        }
        out
    }
    pub fn is_invalid_grant(&self) -> bool {
        self.error == "invalid_grant"
    }
    pub fn message(&self) -> String {
        match &self.description {
            Some(d) => format!("{}: {d}", self.error),
            None => self.error.clone(),
        }
    }
    /// Replaces every secret the flow knows in the kept strings.
    pub fn scrub(&mut self, scrubber: &crate::scrub::Scrubber) {
        self.error = scrubber.scrub(&self.error);
        self.description = self.description.as_deref().map(|d| scrubber.scrub(d));
        self.uri = self.uri.as_deref().map(|u| scrubber.scrub(u));
    }
}

/// Reads a token endpoint's answer: JSON or form-encoded; an `error` member or a
/// status ≥ 400 is a failure; `expires_in`/`token_span` as number or numeric
/// string; `created_at` (epoch seconds or RFC 3339) as the issue time. Numbers
/// out of range make an unknown expiry with a warning, never a panic.
pub fn parse_token_response(
    response: &HttpResponse,
    pointers: &Pointers<'_>,
    now: OffsetDateTime,
) -> Result<TokenSet, ProviderError> {
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let body = parse_body(&text, &response.content_type);
    let fail =
        |error: &str, description: Option<String>| ProviderError::new(response.status, error, description.as_deref());
    let Some(body) = body else {
        let error = if response.status >= 500 { "server_error" } else { "invalid_response" };
        return Err(fail(
            error,
            Some(format!(
                "the token endpoint answered HTTP {} with a body that is neither JSON nor a form",
                response.status
            )),
        ));
    };
    if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
        let error = error.as_str().map(str::to_owned).unwrap_or_else(|| error.to_string());
        let description = body.get("error_description").and_then(Value::as_str);
        let mut refused = ProviderError::new(response.status, &error, description);
        refused.uri = body.get("error_uri").and_then(Value::as_str).map(|u| bounded(u, MAX_ERROR_DESCRIPTION));
        return Err(refused);
    }
    if response.status >= 400 {
        let error = if response.status >= 500 { "server_error" } else { "invalid_response" };
        return Err(fail(error, Some(format!("the token endpoint answered HTTP {}", response.status))));
    }
    let text_at = |pointer: &str| body.pointer(pointer).and_then(value_text);
    let Some(access_token) = text_at(pointers.access_token).filter(|t| !t.is_empty()) else {
        return Err(fail("invalid_response", Some("the token answer has no access_token".into())));
    };
    let mut warnings = Vec::new();
    let created = match body.get("created_at") {
        Some(Value::Number(n)) => Some(n.as_i64().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())),
        Some(Value::String(s)) => Some(
            s.parse::<i64>()
                .ok()
                .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                .or_else(|| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()),
        ),
        _ => None,
    };
    // An issue time far from Grantry's clock says nothing sure about expiry.
    let issued = match created {
        None => Some(now),
        Some(Some(t)) if (t - now).abs() <= MAX_CLOCK_SKEW => Some(t),
        Some(_) => None,
    };
    let lifetime = text_at(pointers.expires_in).or_else(|| text_at("/token_span"));
    let expires_at = match (lifetime.map(|s| s.trim().parse::<f64>()), issued) {
        (None, _) => None,
        (Some(Ok(s)), Some(issued)) if s.is_finite() && (0.0..=MAX_LIFETIME_SECONDS).contains(&s) => {
            issued.checked_add(time::Duration::seconds_f64(s)).filter(|t| t.year() <= 9999)
        }
        (Some(_), None) => {
            warnings.push("the token answer's created_at is not a time near now; the expiry is unknown".to_owned());
            None
        }
        (Some(_), Some(_)) => {
            warnings.push(
                "the token answer's expires_in is not a usable number of seconds; the expiry is unknown".to_owned(),
            );
            None
        }
    };
    Ok(TokenSet {
        access_token: SecretString::from(access_token),
        token_type: text_at(pointers.token_type).filter(|t| !t.is_empty()).unwrap_or_else(|| "Bearer".into()),
        refresh_token: text_at(pointers.refresh_token).filter(|t| !t.is_empty()).map(SecretString::from),
        id_token: text_at("/id_token").filter(|t| !t.is_empty()).map(SecretString::from),
        granted_scope: text_at("/scope").map(|s| bounded(&s, 4096)),
        expires_at,
        raw: SecretString::from(text),
        warnings,
    })
}

pub(super) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn parse_body(text: &str, content_type: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || content_type.contains("json") {
        return serde_json::from_str(trimmed).ok().filter(Value::is_object);
    }
    if trimmed.is_empty() || trimmed.starts_with('<') {
        return None;
    }
    let map: Map<String, Value> = url::form_urlencoded::parse(trimmed.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}
