//! The one mapping from domain errors to HTTP: status, stable code and body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use grantry_core::{Error, ErrorCode};
use serde_json::{json, Value};

/// An error on its way out as `{"error": {"code", "message", ...}}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// Status and stable code of each error. Codes are documented in the README;
/// a test pins this table.
pub fn status_and_code(e: &Error) -> (StatusCode, ErrorCode) {
    match e {
        Error::Validation(fields) => (StatusCode::UNPROCESSABLE_ENTITY, fields.code()),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
        Error::Conflict { .. } => (StatusCode::CONFLICT, ErrorCode::Conflict),
        Error::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
        Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
        Error::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests),
        Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
        Error::State { code, .. } => (StatusCode::CONFLICT, *code),
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ProviderUnavailable),
        Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
    }
}

/// The inner object of the error shape, also used per record in import reports.
/// The message a caller sees: what went wrong inside (a database's own
/// words) is for the log only.
pub fn public_message(e: &Error) -> String {
    match e {
        Error::Internal(_) => "something went wrong inside Grantry; the details are in its log".to_owned(),
        other => other.to_string(),
    }
}

pub fn error_object(e: &Error) -> Value {
    let (_, code) = status_and_code(e);
    let mut body = json!({"code": code, "message": public_message(e)});
    match e {
        Error::Validation(fields) => body["fields"] = json!(fields.0),
        Error::Conflict { referrers, .. } => {
            body["referrers"] = referrers
                .iter()
                .map(|r| json!({"kind": r.kind.as_str(), "id": r.id, "label": r.label}))
                .collect::<Vec<_>>()
                .into()
        }
        _ => {}
    }
    body
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = status_and_code(&self.0);
        if let Error::Internal(message) = &self.0 {
            tracing::error!(%message, "request failed inside Grantry");
        }
        let mut response = (status, axum::Json(json!({"error": error_object(&self.0)}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Error::TooManyRequests { retry_after, .. } = &self.0 {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantry_core::FieldErrors;

    #[test]
    fn every_error_has_its_documented_status_and_code() {
        let cases = [
            (Error::Validation(FieldErrors::default()), 422, "validation_failed"),
            (Error::NotFound(String::new()), 404, "not_found"),
            (Error::Conflict { message: String::new(), referrers: vec![] }, 409, "conflict"),
            (Error::BadRequest(String::new()), 400, "bad_request"),
            (Error::Unauthorized(String::new()), 401, "unauthorized"),
            (Error::Forbidden(String::new()), 403, "forbidden"),
            (Error::TooManyRequests { message: String::new(), retry_after: 1 }, 429, "too_many_requests"),
            (
                Error::Validation(FieldErrors(Default::default(), Some(ErrorCode::TemplateTooExpensive))),
                422,
                "template_too_expensive",
            ),
            (Error::PayloadTooLarge(String::new()), 413, "payload_too_large"),
            (Error::State { code: ErrorCode::TokenExpired, message: String::new() }, 409, "token_expired"),
            (Error::Unavailable(String::new()), 503, "provider_unavailable"),
            (Error::Internal(String::new()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let (got_status, got_code) = status_and_code(&error);
            assert_eq!((got_status, got_code.as_str()), (StatusCode::from_u16(status).unwrap_or_default(), code));
        }
    }
}
