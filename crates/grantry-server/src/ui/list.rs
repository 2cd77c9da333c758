//! The list of a record kind and its menu: filter, pages, delete, export,
//! import and the kind's schema.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use grantry_core::access::Caller;
use grantry_core::filter::{parse_filter_object, parse_list_query, Op};
use grantry_core::oauth2::encode_form;
use grantry_core::service::Selection;
use grantry_core::{timestamp, Error, FieldType, Id, Kind};
use serde_json::{json, Value};

use super::{menu_title, nav, render, ui_error, NavItem, Session, TextPage, UiForm, UiKind};
use crate::AppState;

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

pub(super) async fn list(
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

pub(super) async fn delete(
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

pub(super) async fn export(
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

pub(super) async fn import_page(UiKind(kind): UiKind, session: axum::Extension<Session>) -> Response {
    render(&ImportPage {
        csrf: session.csrf.clone(),
        nav: nav(kind.as_str()),
        title: format!("Import {}", menu_title(kind)),
        base: format!("/ui/{}", kind.as_str()),
        text: String::new(),
        report: None,
    })
}

pub(super) async fn import(
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

pub(super) async fn schema(UiKind(kind): UiKind, session: axum::Extension<Session>) -> Response {
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

/// A time as lists show it: `2026-12-01 23:38:41.123`.
fn shown_time(t: time::OffsetDateTime) -> String {
    timestamp(t).replace('T', " ").trim_end_matches('Z').to_owned()
}
