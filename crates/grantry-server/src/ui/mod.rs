//! The admin web UI at `/ui`: server-rendered pages (askama) for every record
//! kind with the generic menu of docs/concepts.md §2, sign-in with an API token (admin,
//! editor or viewer; each page needs the role its action needs), sessions in
//! HttpOnly SameSite=Strict cookies that end with their token, a CSRF token
//! on every state-changing form, and a Content-Security-Policy without inline code.
//!
//! This module holds the router and what every page shares (the navigation,
//! the record kind of a path, rendering and error pages); the pages live in
//! `list` (the list and its menu), `show` (a record and its actions), `edit`
//! (new and edit), `notifications`, with `session` (sign-in, sessions, CSRF),
//! `headers` (CSP and the other security headers) and `forms` (the typed
//! views of a record form, rendered by `templates/form_fields.html`).

mod edit;
mod forms;
mod headers;
mod list;
mod notifications;
mod session;
mod show;

use askama::Template;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use grantry_core::{Error, Kind};

use crate::AppState;

pub use session::{flow_cookie, Session, Sessions};
use session::{set_flow_cookie, UiForm};

pub fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/clients") }))
        .route("/ui/logout", post(session::logout))
        .route("/ui/notifications", get(notifications::notifications))
        .route("/ui/{kind}", get(list::list).post(edit::create))
        .route("/ui/{kind}/new", get(edit::new))
        .route("/ui/{kind}/options", get(edit::options))
        .route("/ui/scopes/choices", get(edit::scope_choices))
        .route("/ui/{kind}/schema", get(list::schema))
        .route("/ui/{kind}/import", get(list::import_page).post(list::import))
        .route("/ui/{kind}/delete", post(list::delete))
        .route("/ui/{kind}/export", post(list::export))
        .route("/ui/{kind}/{id}", get(show::show).post(edit::update))
        .route("/ui/{kind}/{id}/edit", get(edit::edit))
        .route("/ui/{kind}/{id}/json", get(show::record_json))
        .route("/ui/{kind}/{id}/{action}", post(show::member_action))
        .route_layer(middleware::from_fn_with_state(state, session::require_session));
    Router::new()
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/assets/{name}", get(asset))
        .merge(signed_in)
        .layer(middleware::from_fn(headers::security_headers))
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

/// A text (JSON) page: a kind's schema, a record as the API shows it.
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
