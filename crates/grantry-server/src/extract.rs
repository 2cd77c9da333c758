//! Request extractors that answer bad input with the documented error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use grantry_core::{Error, Id, Kind};
use serde_json::Value;

use crate::error::ApiError;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body: malformed JSON is `bad_request` with the position, more than
/// 1 MiB is `payload_too_large`.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match MaybeJsonBody::from_request(req, state).await?.0 {
            Some(value) => Ok(JsonBody(value)),
            None => Err(Error::BadRequest("the request body is empty; send a JSON document".into()).into()),
        }
    }
}

/// A JSON body that may be left out (an empty body is `None`).
pub struct MaybeJsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for MaybeJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge(format!("the request body is larger than {MAX_BODY} bytes (1 MiB)"))
            } else {
                Error::BadRequest(format!("the request body could not be read: {rejection}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJsonBody(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| MaybeJsonBody(Some(v)))
            .map_err(|e| Error::BadRequest(format!("the request body is not valid JSON: {e}")).into())
    }
}

/// The `{kind}` path segment.
pub fn kind(segment: &str) -> Result<Kind, ApiError> {
    Kind::parse(segment).ok_or_else(|| {
        ApiError(Error::NotFound(format!(
            "no record kind `{segment}`; kinds are {}",
            Kind::ALL.map(Kind::as_str).join(", ")
        )))
    })
}

/// The query string as ordered pairs, decoded.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(url_decode_pairs(query)))
    }
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

pub fn id(segment: String) -> Id {
    Id::from_string(segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_brackets_and_spaces() {
        let pairs = url_decode_pairs("name%5Bcontains%5D=bot&namespace=My+Space&x=%E2%9C%93&bad=%zz");
        assert_eq!(pairs[0], ("name[contains]".into(), "bot".into()));
        assert_eq!(pairs[1].1, "My Space");
        assert_eq!(pairs[2].1, "✓");
        assert_eq!(pairs[3].1, "%zz");
    }
}
