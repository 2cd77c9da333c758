//! Sign-in with an API token, sessions in HttpOnly SameSite=Strict cookies
//! that end with their token, the role each page needs, the CSRF token of
//! every state-changing form, and the flow cookie that binds an authorize
//! started in the UI to the browser that started it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use grantry_core::access::{Action, Role};
use grantry_core::{Error, Id, Kind};

use super::{page_error, render, ui_error};
use crate::extract::MAX_BODY;
use crate::AppState;

const SESSION_COOKIE: &str = "grantry_session";
/// Binds the authorize requests a UI session starts to that browser: sent
/// with the provider's redirect back (SameSite=Lax) to the callback only.
const FLOW_COOKIE: &str = "grantry_flow";
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// A signed-in person.
#[derive(Clone)]
pub struct Session {
    pub(super) csrf: String,
    expires: Instant,
    /// The API token signed in with: the session lives only as long as it does.
    token_hash: String,
    token_id: Option<Id>,
    /// The value of the flow cookie of this session.
    pub(super) flow_key: String,
}

/// Sessions live in memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn create(&self, token_hash: String, token_id: Option<Id>) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            csrf: random_hex(),
            expires: Instant::now() + SESSION_TTL,
            token_hash,
            token_id,
            flow_key: random_hex(),
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > Instant::now());
        map.insert(id.clone(), session.clone());
        (id, session)
    }
    /// Ends every session signed in with a revoked token.
    pub fn end_for_token(&self, token_id: &Id) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, s| s.token_id.as_ref() != Some(token_id));
    }
    fn get(&self, id: &str) -> Option<Session> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }
    fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

fn random_hex() -> String {
    grantry_crypto::random_hex(32)
}

/// The flow cookie a browser sent to the OAuth callback.
pub fn flow_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, FLOW_COOKIE)
}

/// A `Set-Cookie` value, `Secure` under an https public URL.
fn cookie(state: &AppState, text: String) -> Option<HeaderValue> {
    let text = if state.secure() { format!("{text}; Secure") } else { text };
    HeaderValue::from_str(&text).ok()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The action of a UI page, from its method and path (docs/concepts.md §8.1: roles hold in the UI too).
fn ui_action(method: &axum::http::Method, path: &str) -> Option<Action> {
    let path = crate::auth::decoded(path);
    let segments: Vec<&str> = path.trim_start_matches("/ui/").split('/').collect();
    let kind = segments.first().and_then(|s| Kind::parse(s));
    let read = kind.map(Action::Read).unwrap_or(Action::ReadSchema);
    let reads = method == axum::http::Method::GET || method == axum::http::Method::HEAD;
    Some(match (reads, segments.as_slice()) {
        (_, ["logout"]) => return None,
        (true, ["notifications"]) => Action::ReadNotifications,
        (true, [_, "schema"]) => Action::ReadSchema,
        (true, [_, "new"] | [_, _, "edit"] | [_, "import"]) => Action::Write,
        (true, _) => read,
        (false, [_, "export"]) => Action::Export,
        (false, [_, _, "authorize" | "refresh" | "cancel"]) => Action::Flow,
        (false, _) => Action::Write,
    })
}

pub(super) async fn require_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(id) = cookie_value(req.headers(), SESSION_COOKIE) else {
        return Redirect::to("/ui/login").into_response();
    };
    let Some(session) = state.ui.get(&id) else { return Redirect::to("/ui/login").into_response() };
    // The token signed in with must still be valid (revoked elsewhere, expired).
    let caller = match state.api_tokens.authenticate_hash(&session.token_hash).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            state.ui.remove(&id);
            return Redirect::to("/ui/login").into_response();
        }
        Err(e) => return ui_error(e),
    };
    if let Some(action) = ui_action(req.method(), req.uri().path()) {
        if !caller.role.may(action) {
            return page_error(
                StatusCode::FORBIDDEN,
                &grantry_core::access::forbidden(caller.role, action).to_string(),
            );
        }
    }
    req.extensions_mut().insert(session);
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A submitted form whose CSRF token matches the session's.
pub(super) struct UiForm {
    pub(super) pairs: Vec<(String, String)>,
}

impl UiForm {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for UiForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let session = req.extensions().get::<Session>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            page_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("The form is larger than {MAX_BODY} bytes."))
        })?;
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
        let token = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
        match session {
            Some(session) if equal(token, &session.csrf) => Ok(UiForm { pairs }),
            _ => Err(page_error(
                StatusCode::FORBIDDEN,
                "This form is out of date (CSRF check failed). Reload the page and try again.",
            )),
        }
    }
}

/// Sends the session's flow cookie along with the page that leaves for the provider.
pub(super) fn set_flow_cookie(state: &AppState, session: &Session, response: &mut Response) {
    let text = format!(
        "{FLOW_COOKIE}={}; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age={}",
        session.flow_key,
        SESSION_TTL.as_secs()
    );
    if let Some(value) = cookie(state, text) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
}

// ---- sign-in --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
}

pub(super) async fn login_page() -> Response {
    render(&LoginPage { error: None })
}

pub(super) async fn login(State(state): State<AppState>, req: Request) -> Response {
    let address = crate::auth::client_address(&req, &state.trusted_proxies);
    if let Err(e) = state.sign_in_failures.check(address, "sign-ins") {
        let mut response = page_error(StatusCode::TOO_MANY_REQUESTS, &e.to_string());
        if let Error::TooManyRequests { retry_after, .. } = e {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        return response;
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_BODY).await else {
        return page_error(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let token = pairs.iter().find(|(k, _)| k == "token").map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let hash = grantry_core::tokens::hash(&token);
    match state.api_tokens.authenticate_hash(&hash).await.ok().flatten() {
        Some(caller) if caller.role != Role::Integration => {
            let (id, _) = state.ui.create(hash, caller.token_id().cloned());
            let text = format!(
                "{SESSION_COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
                SESSION_TTL.as_secs()
            );
            let mut response = Redirect::to("/ui/clients").into_response();
            if let Some(value) = cookie(&state, text) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Some(_) => render(&LoginPage {
            error: Some("Integration tokens are for the API; sign in with an admin, editor or viewer token.".into()),
        }),
        None => {
            state.sign_in_failures.fail(address);
            render(&LoginPage { error: Some("That API token is not valid.".into()) })
        }
    }
}

pub(super) async fn logout(State(state): State<AppState>, headers: HeaderMap, _form: UiForm) -> Response {
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE) {
        state.ui.remove(&id);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    if let Some(value) = cookie(&state, format!("{SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
