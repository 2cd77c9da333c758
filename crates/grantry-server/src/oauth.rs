//! The OAuth endpoints: authorize, the provider's callback (no login: the state
//! is the credential), fresh tokens, refresh, cancel and notifications.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use grantry_core::access::Caller;
use grantry_core::filter::{DEFAULT_PER_PAGE, MAX_PER_PAGE};
use grantry_core::flows::{Authorized, FreshToken, SignInput, Start};
use grantry_core::ports::NotificationQuery;
use grantry_core::{Error, Id, NotificationLevel};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{JsonBody, MaybeJsonBody, QueryPairs};
use crate::AppState;

type ApiResult = Result<Response, ApiError>;

pub async fn authorize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
    MaybeJsonBody(body): MaybeJsonBody,
) -> ApiResult {
    let body = body.unwrap_or(Value::Null);
    let return_to = match &body {
        Value::Null => None,
        Value::Object(o) => match o.get("return_to") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => return Err(Error::field("return_to", "must be a URL string").into()),
        },
        _ => {
            return Err(Error::BadRequest(
                "the body must be a JSON object such as {\"return_to\": \"https://…\"}".into(),
            )
            .into())
        }
    };
    let start = Start { return_to: return_to.as_deref(), binding: None };
    match state.flows.authorize(&caller, &Id::from_string(id), &start).await? {
        Authorized::Redirect(url) => Ok(Json(json!({"authorize_url": url})).into_response()),
        Authorized::Record(record) => Ok(Json(record).into_response()),
    }
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

/// Generic authorizations carry the state in the callback's path.
pub async fn callback_with_state(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    QueryPairs(mut pairs): QueryPairs,
) -> Response {
    pairs.retain(|(k, _)| k != "state");
    pairs.push(("state".into(), token));
    callback(State(state), headers, QueryPairs(pairs)).await
}

/// The provider sends the browser here with `code` or `error`, and `state`.
/// A flow started from the UI also finds its flow cookie here.
pub async fn callback(State(state): State<AppState>, headers: HeaderMap, QueryPairs(pairs): QueryPairs) -> Response {
    let binding = crate::ui::flow_cookie(&headers);
    match state.flows.callback(&pairs, binding.as_deref()).await {
        Ok(outcome) => {
            let mut params = vec![
                ("authorization", outcome.authorization_id.to_string()),
                ("status", if outcome.authorized { "authorized" } else { "failed" }.to_owned()),
            ];
            if let Some(error) = outcome.error {
                params.push(("error", error));
            }
            let target = outcome.return_to.unwrap_or_else(|| format!("{}/oauth/result", state.public_url));
            let mut url = match url::Url::parse(&target) {
                Ok(u) => u,
                Err(_) => return page(StatusCode::BAD_REQUEST, "Authorization", "The return address is not a URL."),
            };
            url.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            if url.as_str().starts_with(&format!("{}/ui/", state.public_url)) {
                // The browser arrives here from the provider's site, so the UI's
                // SameSite=Strict session cookie is not sent with this request nor
                // with a redirect from it; a page that moves on by itself makes the
                // next request a same-site one, which carries the cookie.
                return continue_page(url.as_str());
            }
            see_other(url.as_str())
        }
        Err(Error::BadRequest(message)) => page(StatusCode::BAD_REQUEST, "Authorization not completed", &message),
        Err(e) => {
            let (status, _) = crate::error::status_and_code(&e);
            if let Error::Internal(m) = &e {
                tracing::error!(message = %m, "the OAuth callback failed inside Grantry");
            }
            page(status, "Authorization not completed", &crate::error::public_message(&e))
        }
    }
}

/// Where the browser lands when the authorize call gave no `return_to`.
pub async fn result(QueryPairs(pairs): QueryPairs) -> Response {
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
    match get("status") {
        "authorized" => page(
            StatusCode::OK,
            "Authorized ✓",
            &format!("Authorization {} is authorized. You can close this window.", get("authorization")),
        ),
        _ => page(
            StatusCode::OK,
            "Authorization failed",
            &format!("Authorization {} was not authorized: {}", get("authorization"), get("error")),
        ),
    }
}

fn continue_page(url: &str) -> Response {
    let url = escape(url);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={url}\">\
         <title>Back to Grantry</title></head><body><p><a href=\"{url}\">Back to Grantry</a></p></body></html>"
    );
    let mut response = (StatusCode::OK, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static("default-src 'none'"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · Grantry</title></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto\"><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

pub async fn token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
) -> ApiResult {
    Ok(token_response(state.flows.fresh_token(&caller, &Id::from_string(id)).await?))
}

pub async fn token_by_key(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Extension(caller): Extension<Arc<Caller>>,
) -> ApiResult {
    Ok(token_response(state.flows.fresh_token_by_key(&caller, &namespace, &name).await?))
}

/// The token as JSON; caches on the way must not keep it.
fn token_response(token: FreshToken) -> Response {
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];
    (headers, token.json().to_owned()).into_response()
}

pub async fn refresh(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
) -> ApiResult {
    Ok(Json(state.flows.refresh(&caller, &Id::from_string(id)).await?).into_response())
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
) -> ApiResult {
    Ok(Json(state.flows.cancel(&caller, &Id::from_string(id)).await?).into_response())
}

pub async fn notifications(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult {
    let mut query = NotificationQuery { page: 1, per_page: DEFAULT_PER_PAGE, ..Default::default() };
    for (key, value) in pairs {
        let number = |max: u32| {
            value.parse::<u32>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                Error::BadRequest(format!("`{key}` must be a whole number from 1 to {max}, not `{value}`"))
            })
        };
        match key.as_str() {
            "page" => query.page = number(u32::MAX)?,
            "per_page" => query.per_page = number(MAX_PER_PAGE)?,
            "authorization" => query.authorization_id = Some(Id::from_string(value)),
            "level" => match NotificationLevel::parse(&value) {
                Some(level) => query.level = Some(level),
                None => {
                    return Err(Error::BadRequest(format!("`level` is info, warning or error, not `{value}`")).into())
                }
            },
            other => {
                return Err(Error::BadRequest(format!(
                    "notifications are filtered by authorization and level, not `{other}`"
                ))
                .into())
            }
        }
    }
    let page = state.flows.notifications().list(&caller, &query).await?;
    Ok(Json(json!({"items": page.items, "total": page.total, "page": page.page, "per_page": page.per_page}))
        .into_response())
}

/// `{"method", "url", "headers", "body"}` -> the headers and query parameters to add.
pub async fn sign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let input = sign_input(&body)?;
    let applied = state.flows.sign(&caller, &Id::from_string(id), &input).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(applied.to_json())).into_response())
}

fn sign_input(body: &Value) -> Result<SignInput, Error> {
    let object = body.as_object().ok_or_else(|| Error::BadRequest("the body must be a JSON object".into()))?;
    let mut errors = grantry_core::FieldErrors::default();
    let text = |field: &str, errors: &mut grantry_core::FieldErrors| match object.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.add(field, "must be a string");
            None
        }
    };
    let method = text("method", &mut errors).unwrap_or_else(|| "GET".into());
    let url = text("url", &mut errors).unwrap_or_default();
    let body_text = text("body", &mut errors);
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                match v.as_str() {
                    Some(v) => headers.push((k.clone(), v.to_owned())),
                    None => errors.add(format!("headers.{k}"), "must be a string"),
                }
            }
        }
        Some(_) => errors.add("headers", "must be an object of header names to values"),
    }
    if let Some(unknown) = object.keys().find(|k| !matches!(k.as_str(), "method" | "url" | "headers" | "body")) {
        errors.add(unknown.as_str(), "is not a field of a request to sign (method, url, headers, body)");
    }
    errors.into_result()?;
    Ok(SignInput { method, url, headers, body: body_text })
}
