//! The one error type of the domain. The server maps each variant to an HTTP
//! status and a stable `code` in a single place.

use std::collections::BTreeMap;

use crate::ErrorCode;

/// Messages per field path (`name`, `provider.name`, `request_token_parameters[1].key`),
/// and the stable code when it is not `validation_failed`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>, pub Option<ErrorCode>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }
    /// Adds a message that gives the whole error the code `template_too_expensive`.
    pub fn add_too_expensive(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.add(field, message);
        self.1 = Some(ErrorCode::TemplateTooExpensive);
    }
    /// The stable code of these errors.
    pub fn code(&self) -> ErrorCode {
        self.1.unwrap_or(ErrorCode::ValidationFailed)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Adds another set under a prefix (`provider` + `name` → `provider.name`).
    pub fn merge_under(&mut self, prefix: &str, other: FieldErrors) {
        self.1 = self.1.or(other.1);
        for (field, messages) in other.0 {
            let path = if prefix.is_empty() { field } else { format!("{prefix}.{field}") };
            self.0.entry(path).or_default().extend(messages);
        }
    }
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self))
        }
    }
    /// One sentence naming every field, for the error's `message`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> =
            self.0.iter().map(|(field, messages)| format!("{field} {}", messages.join(", "))).collect();
        format!("the record is not valid: {}", parts.join("; "))
    }
}

/// A record that still points at the one being deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub kind: crate::Kind,
    pub id: String,
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.summary())]
    Validation(FieldErrors),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, referrers: Vec<Referrer> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The caller's role does not allow the operation; the message names the role needed.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed attempts from one address: try again after `retry_after` seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The record is not in a state that allows the operation; `code` says which
    /// (`not_authorized`, `authorization_failed`, `token_expired`, ...).
    #[error("{message}")]
    State { code: ErrorCode, message: String },
    /// A remote provider could not be reached; nothing changed.
    #[error("{0}")]
    Unavailable(String),
    /// A fault inside Grantry (storage, sealing). The message never holds a secret.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Error {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        Error::Validation(errors)
    }
}
