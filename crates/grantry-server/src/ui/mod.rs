//! The admin web UI at `/ui`: server-rendered pages (askama) for every record
//! kind with the generic menu of SPEC §2, sign-in with an API token (admin,
//! editor or viewer; each page needs the role its action needs), sessions in
//! HttpOnly SameSite=Strict cookies that end with their token, a CSRF token
//! on every state-changing form, and a Content-Security-Policy without inline code.

mod forms;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use grantry_core::access::{Action, Caller, Role};
use grantry_core::filter::{parse_filter_object, parse_list_query, Op};
use grantry_core::flows::{Authorized, Start};
use grantry_core::oauth2::encode_form;
use grantry_core::ports::NotificationQuery;
use grantry_core::service::RecordView;
use grantry_core::service::Selection;
use grantry_core::{timestamp, Error, FieldErrors, FieldType, Id, Kind, NotificationLevel, RecordType, Status};
use serde_json::{json, Value};

use crate::extract::MAX_BODY;
use crate::AppState;

const SESSION_COOKIE: &str = "grantry_session";
/// Binds the authorize requests a UI session starts to that browser: sent
/// with the provider's redirect back (SameSite=Lax) to the callback only.
const FLOW_COOKIE: &str = "grantry_flow";
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// A signed-in person.
#[derive(Clone)]
pub struct Session {
    csrf: String,
    expires: Instant,
    /// The API token signed in with: the session lives only as long as it does.
    token_hash: String,
    token_id: Option<Id>,
    /// The value of the flow cookie of this session.
    flow_key: String,
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

pub fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/clients") }))
        .route("/ui/logout", post(logout))
        .route("/ui/notifications", get(notifications))
        .route("/ui/{kind}", get(list).post(create))
        .route("/ui/{kind}/new", get(new))
        .route("/ui/{kind}/options", get(options))
        .route("/ui/scopes/choices", get(scope_choices))
        .route("/ui/{kind}/schema", get(schema))
        .route("/ui/{kind}/import", get(import_page).post(import))
        .route("/ui/{kind}/delete", post(delete))
        .route("/ui/{kind}/export", post(export))
        .route("/ui/{kind}/{id}", get(show).post(update))
        .route("/ui/{kind}/{id}/edit", get(edit))
        .route("/ui/{kind}/{id}/json", get(record_json))
        .route("/ui/{kind}/{id}/{action}", post(member_action))
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/assets/{name}", get(asset))
        .merge(signed_in)
        .layer(middleware::from_fn(security_headers))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The action of a UI page, from its method and path (issue 8: roles hold in the UI too).
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

async fn require_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
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
struct UiForm {
    pairs: Vec<(String, String)>,
}

impl UiForm {
    fn get(&self, key: &str) -> Option<&str> {
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

fn page_error(status: StatusCode, message: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Grantry</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/ui.css\"></head><body><main><p class=\"notice error\" role=\"alert\">{}</p>\
         <p><a href=\"/ui\">Back to Grantry</a></p></main></body></html>",
        forms::escape(message)
    );
    (status, Html(html)).into_response()
}

fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("The page could not be rendered: {e}")),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match name.as_str() {
        "htmx.min.js" => (include_bytes!("../../assets/htmx.min.js"), "text/javascript"),
        "ui.js" => (include_bytes!("../../assets/ui.js"), "text/javascript"),
        "ui.css" => (include_bytes!("../../assets/ui.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

// ---- sign-in --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
}

async fn login_page() -> Response {
    render(&LoginPage { error: None })
}

async fn login(State(state): State<AppState>, req: Request) -> Response {
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

async fn logout(State(state): State<AppState>, headers: HeaderMap, _form: UiForm) -> Response {
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE) {
        state.ui.remove(&id);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    if let Some(value) = cookie(&state, format!("{SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

// ---- navigation -------------------------------------------------------------------

pub struct NavItem {
    href: String,
    label: &'static str,
    current: bool,
}

/// The Security menu.
fn nav(current: &str) -> Vec<NavItem> {
    [
        ("providers", "Authorization Providers"),
        ("clients", "Authorization Clients"),
        ("authorizations", "Authorizations"),
        ("scopes", "OAuth 2.0 Scopes"),
        ("connections", "Connections"),
        ("notifications", "Notifications"),
    ]
    .into_iter()
    .map(|(path, label)| NavItem { href: format!("/ui/{path}"), label, current: path == current })
    .collect()
}

fn menu_title(kind: Kind) -> &'static str {
    match kind {
        Kind::Provider => "Authorization Providers",
        Kind::Client => "Authorization Clients",
        Kind::Authorization => "Authorizations",
        Kind::Scope => "OAuth 2.0 Scopes",
        Kind::Connection => "Connections",
    }
}

/// The record kind of a `/ui/{kind}/…` page.
struct UiKind(Kind);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for UiKind {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let segment = parts.uri.path().trim_start_matches("/ui/").split('/').next().unwrap_or("").to_owned();
        Kind::parse(&segment)
            .map(UiKind)
            .ok_or_else(|| page_error(StatusCode::NOT_FOUND, &format!("There is no list called {segment}.")))
    }
}

fn ui_error(e: Error) -> Response {
    let (status, _) = crate::error::status_and_code(&e);
    if let Error::Internal(message) = &e {
        tracing::error!(%message, "a UI page failed inside Grantry");
    }
    page_error(status, &crate::error::public_message(&e))
}

// ---- the list and its menu ----------------------------------------------------------

pub struct Row {
    id: String,
    label: String,
    type_label: String,
    status: Option<String>,
    /// A failed authorization's reason.
    error: Option<String>,
    updated_at: String,
}

pub struct Condition {
    field: String,
    op: String,
    value: String,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    csrf: String,
    nav: Vec<NavItem>,
    title: &'static str,
    base: String,
    singular: &'static str,
    plural: &'static str,
    total: u64,
    filtered: bool,
    notice: Option<String>,
    headings: Vec<&'static str>,
    rows: Vec<Row>,
    page: u32,
    pages: u64,
    per_page: u32,
    page_sizes: Vec<u32>,
    prev_url: Option<String>,
    next_url: Option<String>,
    filter_fields: Vec<String>,
    ops: Vec<&'static str>,
    conditions: Vec<Condition>,
    filter_pairs: Vec<(String, String)>,
    query: String,
}

fn filter_fields(kind: Kind) -> Vec<String> {
    let mut out: Vec<String> = vec!["namespace".into(), "name".into(), "type".into()];
    for field in kind.fields() {
        match field.ty {
            FieldType::Reference(target) | FieldType::References(target) => {
                if target.key_parent().is_none() {
                    out.push(format!("{}.namespace", field.name));
                }
                out.push(format!("{}.name", field.name));
            }
            ty if ty.is_scalar() && !field.is_column() => out.push(field.name.into()),
            _ => {}
        }
    }
    if kind.key_parent().is_some() {
        out.retain(|f| f != "namespace" || kind == Kind::Client);
    }
    out.dedup();
    out
}

async fn list(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    session: axum::Extension<Session>,
    crate::extract::QueryPairs(pairs): crate::extract::QueryPairs,
) -> Response {
    let notice = pairs.iter().find(|(k, _)| k == "notice").map(|(_, v)| v.clone());
    let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "notice").collect();
    let query = match parse_list_query(kind, &pairs) {
        Ok(q) => q,
        Err(e) => return ui_error(e),
    };
    let page = match state.records.list(&caller, kind, &query).await {
        Ok(p) => p,
        Err(e) => return ui_error(e),
    };
    let filter_pairs: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| !matches!(k.as_str(), "page" | "per_page" | "sort")).cloned().collect();
    let mut conditions: Vec<Condition> = filter_pairs
        .iter()
        .map(|(k, v)| {
            let (field, op) = match k.strip_suffix(']').and_then(|k| k.split_once('[')) {
                Some((f, op)) => (f.to_owned(), op.to_owned()),
                None => (k.clone(), "eq".to_owned()),
            };
            Condition { field, op, value: v.clone() }
        })
        .collect();
    if conditions.is_empty() {
        conditions.push(Condition { field: "name".into(), op: "contains".into(), value: String::new() });
    }
    let base = format!("/ui/{}", kind.as_str());
    let pages = page.total.div_ceil(u64::from(page.per_page)).max(1);
    let link = |n: u32| {
        let mut p = filter_pairs.clone();
        p.push(("page".into(), n.to_string()));
        p.push(("per_page".into(), page.per_page.to_string()));
        format!("{base}?{}", encode_form(&p))
    };
    let rows = page
        .items
        .iter()
        .map(|item| Row {
            id: item.id.to_string(),
            label: item.label.clone(),
            type_label: item.rtype.label().to_owned(),
            status: item.status().map(|s| s.as_str().to_owned()),
            error: item.field("last_error").and_then(|e| e.get("error")).and_then(Value::as_str).map(|e| {
                match item.field("last_error").and_then(|l| l.get("error_description")).and_then(Value::as_str) {
                    Some(d) => format!("{e}: {d}"),
                    None => e.to_owned(),
                }
            }),
            updated_at: shown_time(item.updated_at),
        })
        .collect();
    let mut headings = vec!["Label", "Type"];
    if kind == Kind::Authorization {
        headings.push("Status");
    }
    headings.push("Updated");
    render(&ListPage {
        csrf: session.csrf.clone(),
        nav: nav(kind.as_str()),
        title: menu_title(kind),
        base: base.clone(),
        singular: kind.singular(),
        plural: kind.as_str(),
        total: page.total,
        filtered: !filter_pairs.is_empty(),
        notice,
        headings,
        rows,
        page: page.page,
        pages,
        per_page: page.per_page,
        page_sizes: vec![10, 25, 50, 100],
        prev_url: (page.page > 1).then(|| link(page.page - 1)),
        next_url: (u64::from(page.page) < pages).then(|| link(page.page + 1)),
        filter_fields: filter_fields(kind),
        ops: Op::ALL.iter().map(|op| op.as_str()).collect(),
        conditions,
        query: encode_form(&filter_pairs),
        filter_pairs,
    })
}

/// The records a delete or export of the menu takes: the selected ids, or with
/// none selected every record of the current filter.
fn menu_selection(kind: Kind, form: &UiForm) -> Result<Selection, Error> {
    let ids: Vec<Id> =
        form.get("ids").unwrap_or("").split(',').filter(|s| !s.is_empty()).map(Id::from_string).collect();
    if !ids.is_empty() {
        return Ok(Selection::Ids(ids));
    }
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(form.get("filter").unwrap_or("").as_bytes()).into_owned().collect();
    let object: serde_json::Map<String, Value> = pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(Selection::Filter(parse_filter_object(kind, &Value::Object(object))?))
}

async fn delete(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    form: UiForm,
) -> Response {
    let notice = match menu_selection(kind, &form) {
        Ok(selection) => match state.flows.delete_many(&caller, kind, &selection).await {
            Ok(n) => format!("{n} {} deleted", if n == 1 { kind.singular() } else { kind.as_str() }),
            Err(e) => crate::error::public_message(&e),
        },
        Err(e) => crate::error::public_message(&e),
    };
    Redirect::to(&format!("/ui/{}?{}", kind.as_str(), encode_form(&[("notice".into(), notice)]))).into_response()
}

async fn export(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    form: UiForm,
) -> Response {
    let records = match menu_selection(kind, &form) {
        Ok(selection) => state.records.export(&caller, kind, &selection).await,
        Err(e) => Err(e),
    };
    match records {
        Ok(records) => {
            let body = serde_json::to_string_pretty(&records).unwrap_or_default();
            let disposition = format!("attachment; filename=\"grantry-{}.json\"", kind.as_str());
            ([(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
                .into_response()
        }
        Err(e) => ui_error(e),
    }
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    csrf: String,
    nav: Vec<NavItem>,
    title: String,
    base: String,
    text: String,
    report: Option<String>,
}

async fn import_page(UiKind(kind): UiKind, session: axum::Extension<Session>) -> Response {
    render(&ImportPage {
        csrf: session.csrf.clone(),
        nav: nav(kind.as_str()),
        title: format!("Import {}", menu_title(kind)),
        base: format!("/ui/{}", kind.as_str()),
        text: String::new(),
        report: None,
    })
}

async fn import(
    State(state): State<AppState>,
    UiKind(kind): UiKind,
    session: axum::Extension<Session>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    form: UiForm,
) -> Response {
    let text = form.get("records").unwrap_or("").to_owned();
    let report = match serde_json::from_str::<Value>(&text) {
        Err(e) => format!("The text is not valid JSON: {e}"),
        Ok(records) => match state.records.import(&caller, kind, &records).await {
            Ok(r) => {
                let failed: Vec<Value> =
                    r.failed.iter().map(|(i, e)| json!({"index": i, "error": crate::error::error_object(e)})).collect();
                serde_json::to_string_pretty(
                    &json!({"created": r.created, "updated": r.updated, "unchanged": r.unchanged, "failed": failed}),
                )
                .unwrap_or_default()
            }
            Err(e) => crate::error::public_message(&e),
        },
    };
    render(&ImportPage {
        csrf: session.csrf.clone(),
        nav: nav(kind.as_str()),
        title: format!("Import {}", menu_title(kind)),
        base: format!("/ui/{}", kind.as_str()),
        text,
        report: Some(report),
    })
}

#[derive(Template)]
#[template(path = "text.html")]
struct TextPage {
    csrf: String,
    nav: Vec<NavItem>,
    title: String,
    back: String,
    intro: Option<String>,
    body: String,
}

async fn schema(UiKind(kind): UiKind, session: axum::Extension<Session>) -> Response {
    render(&TextPage {
        csrf: session.csrf.clone(),
        nav: nav(kind.as_str()),
        title: format!("Data Type: {}", kind.title()),
        back: format!("/ui/{}", kind.as_str()),
        intro: Some(
            "The JSON Schema of the record kind: fields, types, enums, required fields, references and secrets.".into(),
        ),
        body: serde_json::to_string_pretty(&grantry_core::schema::kind_schema(kind)).unwrap_or_default(),
    })
}

async fn record_json(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    Path((_, id)): Path<(String, String)>,
    session: axum::Extension<Session>,
) -> Response {
    match state.records.get(&caller, kind, &Id::from_string(id.clone())).await {
        Ok(record) => render(&TextPage {
            csrf: session.csrf.clone(),
            nav: nav(kind.as_str()),
            title: format!("JSON: {}", record.label),
            back: format!("/ui/{}/{id}", kind.as_str()),
            intro: Some("Secrets are never shown; `secrets` says which are set.".into()),
            body: serde_json::to_string_pretty(&record).unwrap_or_default(),
        }),
        Err(e) => ui_error(e),
    }
}

// ---- show -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "show.html")]
struct ShowPage {
    csrf: String,
    nav: Vec<NavItem>,
    title: String,
    base: String,
    id: String,
    status: Option<String>,
    notice: Option<String>,
    notice_is_error: bool,
    authorization_actions: bool,
    items: Vec<(String, String)>,
}

fn display(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) if s.is_empty() => "—".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Object(o) if o.contains_key("id") && o.contains_key("name") => {
            let mut parts: Vec<String> = Vec::new();
            if let Some(parent) = o.get("provider") {
                parts.push(display(parent));
            }
            if let Some(ns) = o.get("namespace").and_then(Value::as_str) {
                parts.push(ns.to_owned());
            }
            parts.push(o.get("name").and_then(Value::as_str).unwrap_or_default().to_owned());
            parts.join(" | ")
        }
        Value::Array(items) if items.iter().all(|i| i.get("key").is_some()) && !items.is_empty() => items
            .iter()
            .map(|i| format!("{} = {}", i["key"].as_str().unwrap_or(""), i["value"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; "),
        Value::Array(items) if items.is_empty() => "—".into(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

async fn show(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    Path((_, id)): Path<(String, String)>,
    session: axum::Extension<Session>,
    crate::extract::QueryPairs(pairs): crate::extract::QueryPairs,
) -> Response {
    let record = match state.records.get(&caller, kind, &Id::from_string(id.clone())).await {
        Ok(r) => r,
        Err(e) => return ui_error(e),
    };
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    // Back from a provider: the callback adds ?status= (and ?error=).
    let (notice, notice_is_error) = match (get("status").as_deref(), get("error"), get("notice")) {
        (Some("authorized"), _, _) => (Some("Authorized.".to_owned()), false),
        (Some(_), Some(error), _) => (Some(format!("Not authorized: {error}")), true),
        (_, _, Some(notice)) => {
            let is_error = notice.starts_with("Could not");
            (Some(notice), is_error)
        }
        _ => (None, false),
    };
    let mut items =
        vec![(forms::human("id"), record.id.to_string()), (forms::human("type"), record.rtype.as_str().to_owned())];
    for (name, value) in &record.fields {
        items.push((forms::human(name), display(value)));
    }
    items.push((forms::human("created_at"), timestamp(record.created_at)));
    items.push((forms::human("updated_at"), timestamp(record.updated_at)));
    if let Some(origin) = record.origin {
        items.push((forms::human("origin"), origin.as_str().to_owned()));
    }
    for (name, set) in &record.secrets {
        items.push((forms::human(name), if *set { "set (hidden)" } else { "not set" }.to_owned()));
    }
    render(&ShowPage {
        csrf: session.csrf.clone(),
        nav: nav(kind.as_str()),
        title: record.label.clone(),
        base: format!("/ui/{}", kind.as_str()),
        id,
        status: record.status().map(|s| s.as_str().to_owned()),
        notice,
        notice_is_error,
        authorization_actions: kind == Kind::Authorization,
        items,
    })
}

/// Authorize, Refresh and Cancel of an authorization.
#[derive(Template)]
#[template(path = "leave.html")]
struct LeavePage {
    csrf: String,
    nav: Vec<NavItem>,
    label: String,
    host: String,
    url: String,
    back: String,
}

async fn member_action(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    Path((kind, id, action)): Path<(String, String, String)>,
    session: axum::Extension<Session>,
    _form: UiForm,
) -> Response {
    if kind != "authorizations" {
        return page_error(StatusCode::NOT_FOUND, "No such action.");
    }
    let record_id = Id::from_string(id.clone());
    let back = format!("/ui/authorizations/{id}");
    let result = match action.as_str() {
        "authorize" => {
            let return_to = format!("{}{back}", state.public_url);
            let start = Start { return_to: Some(&return_to), binding: Some(&session.flow_key) };
            match state.flows.authorize(&caller, &record_id, &start).await {
                Ok(Authorized::Redirect(url)) => {
                    // Say where the browser goes before it leaves.
                    let host =
                        url::Url::parse(&url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
                    let label = match state.records.get(&caller, Kind::Authorization, &record_id).await {
                        Ok(r) => r.label,
                        Err(_) => String::new(),
                    };
                    let mut page = render(&LeavePage {
                        csrf: session.csrf.clone(),
                        nav: nav("authorizations"),
                        label,
                        host,
                        url,
                        back,
                    });
                    let text = format!(
                        "{FLOW_COOKIE}={}; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age={}",
                        session.flow_key,
                        SESSION_TTL.as_secs()
                    );
                    if let Some(value) = cookie(&state, text) {
                        page.headers_mut().insert(header::SET_COOKIE, value);
                    }
                    return page;
                }
                Ok(Authorized::Record(r)) => {
                    Ok(format!("Authorize answered: {}", r.status().map(Status::as_str).unwrap_or("")))
                }
                Err(Error::State { code: grantry_core::ErrorCode::NotSupported, .. }) => {
                    return Redirect::to(&format!("{back}/edit?notice=Set+the+credentials+to+authorize"))
                        .into_response()
                }
                Err(e) => Err(e),
            }
        }
        "refresh" => state.flows.refresh(&caller, &record_id).await.map(|_| "Refreshed.".to_owned()),
        "cancel" => state.flows.cancel(&caller, &record_id).await.map(|_| "Cancelled: the tokens are gone.".to_owned()),
        _ => return page_error(StatusCode::NOT_FOUND, "No such action."),
    };
    let notice = match result {
        Ok(n) => n,
        Err(e) => format!("Could not {action}: {}", crate::error::public_message(&e)),
    };
    Redirect::to(&format!("{back}?{}", encode_form(&[("notice".into(), notice)]))).into_response()
}

// ---- new and edit -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "types.html")]
struct TypesPage {
    csrf: String,
    nav: Vec<NavItem>,
    title: String,
    base: String,
    singular: &'static str,
    types: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage {
    csrf: String,
    nav: Vec<NavItem>,
    title: String,
    action: String,
    cancel_url: String,
    rtype: Option<String>,
    summary: Option<String>,
    fields_html: String,
}

/// The choices of every reference field of a kind.
/// Records to offer in a picker: up to a page of them, by label.
async fn choices(
    state: &AppState,
    caller: &Caller,
    kind: Kind,
    conditions: Vec<grantry_core::filter::Condition>,
) -> Vec<(String, String)> {
    let query = grantry_core::filter::ListQuery {
        conditions,
        sorts: grantry_core::filter::parse_sort(kind, "name").unwrap_or_default(),
        page: 1,
        per_page: grantry_core::filter::MAX_PER_PAGE,
    };
    let mut out: Vec<(String, String)> = match state.records.list(caller, kind, &query).await {
        Ok(page) => page.items.iter().map(|i| (i.id.to_string(), i.label.clone())).collect(),
        Err(_) => Vec::new(),
    };
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// The scopes of a client's provider.
async fn scopes_of_client(state: &AppState, caller: &Caller, client_id: &str) -> Vec<(String, String)> {
    if client_id.is_empty() {
        return Vec::new();
    }
    let Ok(client) = state.records.get(caller, Kind::Client, &Id::from_string(client_id)).await else {
        return Vec::new();
    };
    let provider = client.reference("provider").unwrap_or_default();
    match grantry_core::filter::parse_condition(Kind::Scope, "provider.id", provider) {
        Ok(condition) => choices(state, caller, Kind::Scope, vec![condition]).await,
        Err(_) => Vec::new(),
    }
}

/// The choices of every reference field of a kind's form.
async fn reference_options(state: &AppState, caller: &Caller, kind: Kind, values: &Value) -> forms::Options {
    let mut options = forms::Options::new();
    for field in kind.fields() {
        let list = match field.ty {
            FieldType::Reference(target) => choices(state, caller, target, Vec::new()).await,
            FieldType::References(_) => {
                let client = &values["client"];
                scopes_of_client(
                    state,
                    caller,
                    client.get("id").and_then(Value::as_str).or(client.as_str()).unwrap_or(""),
                )
                .await
            }
            _ => continue,
        };
        options.insert(field.name, list);
    }
    options
}

/// How a form is shown: a page of its own, or a layer stacked on the page that
/// opened it ("+" or ✎ beside a reference), which fills in that reference.
#[derive(Clone, Default)]
struct Nesting {
    /// The id of the reference input the layer fills in.
    target: Option<String>,
}

impl Nesting {
    fn from_pairs(pairs: &[(String, String)]) -> Nesting {
        let nested = pairs.iter().any(|(k, v)| k == "nested" && v == "1");
        let target = pairs.iter().find(|(k, _)| k == "for").map(|(_, v)| v.clone());
        Nesting { target: if nested { Some(target.unwrap_or_default()) } else { None } }
    }
    fn query(&self) -> String {
        match &self.target {
            Some(t) => format!("?{}", encode_form(&[("nested".into(), "1".into()), ("for".into(), t.clone())])),
            None => String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "layer.html")]
struct LayerForm {
    csrf: String,
    title: String,
    action: String,
    rtype: Option<String>,
    summary: Option<String>,
    fields_html: String,
    target: String,
}

#[derive(Template)]
#[template(path = "layer_types.html")]
struct LayerTypes {
    title: String,
    base: String,
    target: String,
    types: Vec<(&'static str, &'static str)>,
}

#[allow(clippy::too_many_arguments)]
async fn form_page(
    state: &AppState,
    caller: &Caller,
    session: &Session,
    kind: Kind,
    rtype: RecordType,
    values: &Value,
    errors: &FieldErrors,
    id: Option<&str>,
    nesting: &Nesting,
) -> Response {
    let base = format!("/ui/{}", kind.as_str());
    let type_label = rtype.label();
    let options = reference_options(state, caller, kind, values).await;
    let title = match id {
        Some(_) => format!("Edit {}", values["label"].as_str().unwrap_or(type_label)),
        None => format!("New {type_label}"),
    };
    let action = match id {
        Some(id) => format!("{base}/{id}"),
        None => base.clone(),
    };
    let rtype_field = (!kind.has_single_type() && id.is_none()).then(|| rtype.as_str().to_owned());
    let summary = (!errors.is_empty()).then(|| "Some fields need attention; nothing was saved.".to_owned());
    if let Some(target) = &nesting.target {
        // Each layer's inputs get ids of their own, so layers can stack at any depth.
        let prefix = format!("n{}", &grantry_crypto::random_hex(4));
        return render(&LayerForm {
            csrf: session.csrf.clone(),
            title,
            action: format!("{action}{}", nesting.query()),
            rtype: rtype_field,
            summary,
            fields_html: forms::render(kind, rtype, values, errors, &options, &prefix),
            target: target.clone(),
        });
    }
    render(&FormPage {
        csrf: session.csrf.clone(),
        nav: nav(kind.as_str()),
        title,
        cancel_url: match id {
            Some(id) => format!("{base}/{id}"),
            None => base.clone(),
        },
        action,
        rtype: rtype_field,
        summary,
        fields_html: forms::render(kind, rtype, values, errors, &options, "f"),
    })
}

/// After a layer saved: htmx raises `grantry:saved` with what the opener needs.
fn saved_in_layer(target: &str, record: &RecordView) -> Response {
    let detail = json!({"grantry:saved": {
        "for": target,
        "id": record.id.as_str(),
        "label": record.label,
    }});
    let mut response = StatusCode::OK.into_response();
    if let Ok(value) = HeaderValue::from_str(&detail.to_string()) {
        response.headers_mut().insert("HX-Trigger", value);
    }
    response
}

async fn options(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    crate::extract::QueryPairs(pairs): crate::extract::QueryPairs,
) -> Response {
    let q = pairs.iter().find(|(k, _)| k == "q").map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    // The typed text is a label ("Slack | Slack | main"); its last part is the name.
    let name = q.rsplit('|').next().unwrap_or("").trim().to_owned();
    let conditions = match grantry_core::filter::parse_condition(kind, "name[contains]", &name) {
        Ok(c) if !name.is_empty() => vec![c],
        _ => Vec::new(),
    };
    let mut html = String::new();
    for (id, label) in choices(&state, &caller, kind, conditions).await {
        html.push_str(&format!(
            "<option value=\"{}\" data-id=\"{}\"></option>",
            forms::escape(&label),
            forms::escape(&id)
        ));
    }
    Html(html).into_response()
}

async fn scope_choices(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    crate::extract::QueryPairs(pairs): crate::extract::QueryPairs,
) -> Response {
    let client = pairs.iter().find(|(k, _)| k == "client").map(|(_, v)| v.clone()).unwrap_or_default();
    let mut html = String::new();
    for (id, label) in scopes_of_client(&state, &caller, &client).await {
        html.push_str(&format!("<option value=\"{}\">{}</option>", forms::escape(&id), forms::escape(&label)));
    }
    Html(html).into_response()
}

async fn new(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    session: axum::Extension<Session>,
    crate::extract::QueryPairs(pairs): crate::extract::QueryPairs,
) -> Response {
    let nesting = Nesting::from_pairs(&pairs);
    let chosen = pairs.iter().find(|(k, _)| k == "type").map(|(_, v)| v.as_str()).and_then(|t| kind.parse_type(t));
    let rtype = match (kind.types(), chosen) {
        ([only], _) => *only,
        (_, Some(rtype)) => rtype,
        (_, None) if nesting.target.is_some() => {
            return render(&LayerTypes {
                title: format!("New {}", kind.title()),
                base: format!("/ui/{}", kind.as_str()),
                target: nesting.target.clone().unwrap_or_default(),
                types: kind.types().iter().map(|t| (t.as_str(), t.label())).collect(),
            })
        }
        (_, None) => {
            return render(&TypesPage {
                csrf: session.csrf.clone(),
                nav: nav(kind.as_str()),
                title: format!("New {}", kind.title()),
                base: format!("/ui/{}", kind.as_str()),
                singular: kind.singular(),
                types: kind.types().iter().map(|t| (t.as_str(), t.label())).collect(),
            })
        }
    };
    form_page(&state, &caller, &session, kind, rtype, &json!({}), &FieldErrors::default(), None, &nesting).await
}

/// What the form showed, to fill it in again after a failed save.
fn submitted_values(kind: Kind, rtype: RecordType, body: &Value, existing: Option<&Value>) -> Value {
    let mut values = existing.cloned().unwrap_or_else(|| json!({}));
    for field in kind.fields_of(rtype) {
        if let Some(v) = body.get(field.name) {
            if !field.is_secret() {
                values[field.name] = v.clone();
            }
        }
    }
    values
}

async fn create(
    State(state): State<AppState>,
    UiKind(kind): UiKind,
    session: axum::Extension<Session>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    crate::extract::QueryPairs(query): crate::extract::QueryPairs,
    form: UiForm,
) -> Response {
    let nesting = Nesting::from_pairs(&query);
    let chosen = match kind.types() {
        [only] => Some(*only),
        _ => form.get("type").and_then(|t| kind.parse_type(t)),
    };
    let Some(rtype) = chosen else {
        return page_error(StatusCode::BAD_REQUEST, "Choose a type first.");
    };
    let body = match forms::to_body(kind, rtype, &form.pairs) {
        Ok(b) => b,
        Err(errors) => {
            return form_page(&state, &caller, &session, kind, rtype, &json!({}), &errors, None, &nesting).await
        }
    };
    match state.records.create(&caller, kind, &body).await {
        Ok(record) if nesting.target.is_some() => saved_in_layer(nesting.target.as_deref().unwrap_or(""), &record),
        Ok(record) => {
            let notice = format!("Saved {}", record.label);
            Redirect::to(&format!("/ui/{}?{}", kind.as_str(), encode_form(&[("notice".into(), notice)])))
                .into_response()
        }
        Err(Error::Validation(errors)) => {
            let values = submitted_values(kind, rtype, &body, None);
            form_page(&state, &caller, &session, kind, rtype, &values, &errors, None, &nesting).await
        }
        Err(e) => ui_error(e),
    }
}

async fn edit(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    UiKind(kind): UiKind,
    Path((_, id)): Path<(String, String)>,
    session: axum::Extension<Session>,
    crate::extract::QueryPairs(query): crate::extract::QueryPairs,
) -> Response {
    let nesting = Nesting::from_pairs(&query);
    match state.records.get(&caller, kind, &Id::from_string(id.clone())).await {
        Ok(record) => {
            let values = record.to_value();
            form_page(
                &state,
                &caller,
                &session,
                kind,
                record.rtype,
                &values,
                &FieldErrors::default(),
                Some(&id),
                &nesting,
            )
            .await
        }
        Err(e) => ui_error(e),
    }
}

async fn update(
    State(state): State<AppState>,
    UiKind(kind): UiKind,
    Path((_, id)): Path<(String, String)>,
    session: axum::Extension<Session>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    crate::extract::QueryPairs(query): crate::extract::QueryPairs,
    form: UiForm,
) -> Response {
    let nesting = Nesting::from_pairs(&query);
    let record_id = Id::from_string(id.clone());
    let (existing, rtype) = match state.records.get(&caller, kind, &record_id).await {
        Ok(r) => (r.to_value(), r.rtype),
        Err(e) => return ui_error(e),
    };
    let body = match forms::to_body(kind, rtype, &form.pairs) {
        Ok(mut b) => {
            if let Some(o) = b.as_object_mut() {
                o.remove("type");
            }
            b
        }
        Err(errors) => {
            return form_page(&state, &caller, &session, kind, rtype, &existing, &errors, Some(&id), &nesting).await
        }
    };
    match state.records.patch(&caller, kind, &record_id, &body).await {
        Ok(record) if nesting.target.is_some() => saved_in_layer(nesting.target.as_deref().unwrap_or(""), &record),
        Ok(_) => Redirect::to(&format!("/ui/{}/{id}?notice=Saved", kind.as_str())).into_response(),
        Err(Error::Validation(errors)) => {
            let values = submitted_values(kind, rtype, &body, Some(&existing));
            form_page(&state, &caller, &session, kind, rtype, &values, &errors, Some(&id), &nesting).await
        }
        Err(e) => ui_error(e),
    }
}

// ---- notifications ------------------------------------------------------------------

pub struct NotificationRow {
    level: String,
    level_class: &'static str,
    time: String,
    record: String,
    href: Option<String>,
    message: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    csrf: String,
    nav: Vec<NavItem>,
    total: u64,
    level: String,
    levels: Vec<&'static str>,
    items: Vec<NotificationRow>,
}

async fn notifications(
    State(state): State<AppState>,
    session: axum::Extension<Session>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    crate::extract::QueryPairs(pairs): crate::extract::QueryPairs,
) -> Response {
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let level = get("level").and_then(|l| NotificationLevel::parse(&l));
    let query = NotificationQuery {
        authorization_id: get("authorization").map(Id::from_string),
        level,
        page: get("page").and_then(|p| p.parse().ok()).unwrap_or(1),
        per_page: 100,
    };
    let page = match state.flows.notifications().list(&caller, &query).await {
        Ok(p) => p,
        Err(e) => return ui_error(e),
    };
    let items = page
        .items
        .iter()
        .map(|n| {
            let auth = n.authorization.as_ref();
            NotificationRow {
                level_class: match n.level {
                    NotificationLevel::Error => "failed",
                    NotificationLevel::Warning => "expired",
                    NotificationLevel::Info => "unauthorized",
                },
                level: n.level.as_str().to_owned(),
                time: n.created_at.replace('T', " ").trim_end_matches('Z').to_owned(),
                record: match (auth.and_then(|a| a.namespace.as_deref()), auth.and_then(|a| a.name.as_deref())) {
                    (Some(ns), Some(name)) if !ns.is_empty() => format!("{ns} | {name}"),
                    (_, Some(name)) => name.to_owned(),
                    _ => "—".to_owned(),
                },
                href: auth.map(|a| format!("/ui/authorizations/{}", a.id)),
                message: n.message.clone(),
            }
        })
        .collect();
    render(&NotificationsPage {
        csrf: session.csrf.clone(),
        nav: nav("notifications"),
        total: page.total,
        level: level.map(|l| l.as_str().to_owned()).unwrap_or_default(),
        levels: vec!["info", "warning", "error"],
        items,
    })
}

/// A time as lists show it: `2026-12-01 23:38:41.123`.
fn shown_time(t: time::OffsetDateTime) -> String {
    timestamp(t).replace('T', " ").trim_end_matches('Z').to_owned()
}
