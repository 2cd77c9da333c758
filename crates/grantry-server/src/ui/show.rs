//! A record's page, its JSON, and the actions of an authorization: Authorize,
//! Refresh and Cancel.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantry_core::access::Caller;
use grantry_core::flows::{Authorized, Start};
use grantry_core::oauth2::encode_form;
use grantry_core::{Error, Id, Kind, Status};
use serde_json::Value;

use super::{forms, nav, page_error, render, set_flow_cookie, ui_error, NavItem, Session, TextPage, UiForm, UiKind};
use crate::AppState;

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

pub(super) async fn show(
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
    let mut items: Vec<(String, String)> =
        record.entries().iter().map(|(name, value)| (forms::human(name), display(value))).collect();
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

pub(super) async fn member_action(
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
                    set_flow_cookie(&state, &session, &mut page);
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

pub(super) async fn record_json(
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
