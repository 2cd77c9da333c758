//! The notifications page: what flows reported, by level and authorization.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use grantry_core::access::Caller;
use grantry_core::ports::NotificationQuery;
use grantry_core::{Id, NotificationLevel};

use super::{nav, render, ui_error, NavItem, Session};
use crate::AppState;

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

pub(super) async fn notifications(
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
