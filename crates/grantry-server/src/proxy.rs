//! `ANY /api/v1/connections/{id}/proxy/{path}`: forwards a caller's request
//! through a connection with its authorization applied, and streams the
//! remote answer back. A 401 from the remote API refreshes an oauth2
//! authorization once and retries once (the request body is kept in memory,
//! at most 1 MiB, so it can be replayed).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Extension;
use futures_util::StreamExt as _;
use grantry_core::access::Caller;
use grantry_core::flows::{is_forwarded_header, ProxyInput};
use grantry_core::ports::{HttpRequest, SendError};
use grantry_core::{Error, Id};

use crate::error::ApiError;
use crate::extract::MAX_BODY;
use crate::AppState;

/// The most a proxied answer may stream back.
pub const MAX_PROXIED_ANSWER: usize = 64 * 1024 * 1024;

/// A raw request body of at most 1 MiB.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|rejection| {
            ApiError(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge(format!("the request body is larger than {MAX_BODY} bytes (1 MiB)"))
            } else {
                Error::BadRequest(format!("the request body could not be read: {rejection}"))
            })
        })
    }
}

async fn send(state: &AppState, request: HttpRequest) -> Result<reqwest::Response, ApiError> {
    state.outbound.start(request).await.map_err(|e| {
        ApiError(match e {
            SendError::Transient(m) => Error::Unavailable(format!("the remote API could not be reached: {m}")),
            SendError::Refused(m) => Error::State { code: grantry_core::ErrorCode::DestinationRefused, message: m },
            SendError::Unreadable(m) => Error::Unavailable(format!("the remote API's answer could not be read: {m}")),
        })
    })
}

pub async fn forward(
    State(state): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    Extension(caller): Extension<Arc<Caller>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let id = params.iter().find(|(k, _)| k == "id").map(|(_, v)| v.clone()).unwrap_or_default();
    // The path as the caller sent it, percent-encoding and all.
    let prefix = format!("/api/v1/connections/{id}/proxy");
    let path = uri.path().strip_prefix(&prefix).unwrap_or("").trim_start_matches('/').to_owned();
    let input = ProxyInput {
        method: method.as_str().to_owned(),
        path,
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let id = Id::from_string(id);
    let prepared = state.flows.prepare_proxy(&caller, &id, &input).await?;
    let refreshable = prepared.refreshable.clone();
    let mut response = send(&state, prepared.request).await?;
    let status = response.status().as_u16();
    if let Some(again) = state.flows.retry_proxied(&caller, &id, &input, refreshable.as_ref(), status).await? {
        response = send(&state, again.request).await?;
    }
    let mut builder = Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        let ours = [header::CACHE_CONTROL, header::X_CONTENT_TYPE_OPTIONS, header::CONTENT_SECURITY_POLICY];
        if (is_forwarded_header(name.as_str()) || name == "content-length") && !ours.contains(name) {
            builder = builder.header(name, value);
        }
    }
    // The answer carries what the remote API gave for this caller: never kept
    // by caches, never sniffed into another type, never run as a page of Grantry's.
    builder = builder
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, "sandbox");
    let mut sent = 0usize;
    let stream = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        sent += chunk.len();
        if sent > MAX_PROXIED_ANSWER {
            return Err(std::io::Error::other("the remote answer is larger than 64 MiB"));
        }
        Ok(chunk)
    });
    builder.body(Body::from_stream(stream)).map_err(|e| ApiError(Error::Internal(e.to_string())))
}
