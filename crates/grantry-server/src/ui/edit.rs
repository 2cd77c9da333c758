//! New and edit: the type chooser, the record form (a page, or a layer
//! stacked on the page that opened it), saving through the record service,
//! and the choices of reference pickers.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use grantry_core::access::Caller;
use grantry_core::oauth2::encode_form;
use grantry_core::service::RecordView;
use grantry_core::{Error, FieldErrors, FieldType, Id, Kind, RecordType};
use serde_json::{json, Value};

use super::forms::{self, Choice, FieldKind, FieldView};
use super::{nav, page_error, render, ui_error, NavItem, Session, UiForm, UiKind};
use crate::AppState;

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
    fields: Vec<FieldView>,
}

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
    fields: Vec<FieldView>,
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
            fields: forms::fields(kind, rtype, values, errors, &options, &prefix),
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
        fields: forms::fields(kind, rtype, values, errors, &options, "f"),
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

/// The datalist of a reference picker, narrowed to what was typed.
#[derive(Template)]
#[template(path = "ref_options.html")]
struct RefOptions {
    options: Vec<Choice>,
}

/// The options of a select of records (an authorization's scopes).
#[derive(Template)]
#[template(path = "choice_options.html")]
struct ChoiceOptions {
    options: Vec<Choice>,
}

pub(super) async fn options(
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
    let options = choices(&state, &caller, kind, conditions).await.iter().map(|o| Choice::new(o, false)).collect();
    render(&RefOptions { options })
}

pub(super) async fn scope_choices(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    crate::extract::QueryPairs(pairs): crate::extract::QueryPairs,
) -> Response {
    let client = pairs.iter().find(|(k, _)| k == "client").map(|(_, v)| v.clone()).unwrap_or_default();
    let options = scopes_of_client(&state, &caller, &client).await.iter().map(|o| Choice::new(o, false)).collect();
    render(&ChoiceOptions { options })
}

pub(super) async fn new(
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

pub(super) async fn create(
    State(state): State<AppState>,
    UiKind(kind): UiKind,
    session: axum::Extension<Session>,
    axum::Extension(caller): axum::Extension<Arc<Caller>>,
    crate::extract::QueryPairs(query): crate::extract::QueryPairs,
    form: UiForm,
) -> Response {
    let nesting = Nesting::from_pairs(&query);
    // A form without a type is of the kind's first type.
    let Some(rtype) = kind.parse_type(form.get("type").unwrap_or(kind.types()[0].as_str())) else {
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

pub(super) async fn edit(
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

pub(super) async fn update(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use grantry_core::ClientType;

    use super::*;

    #[test]
    fn widgets_escape_values_and_never_show_secrets() {
        let layer = LayerForm {
            csrf: "c".into(),
            title: "New client".into(),
            action: "/ui/clients".into(),
            rtype: None,
            summary: None,
            fields: forms::fields(
                Kind::Client,
                RecordType::Client(ClientType::RemoteOauth),
                &json!({"name": "<script>", "secrets": {"secret": true}}),
                &FieldErrors::default(),
                &forms::Options::new(),
                "f",
            ),
            target: "f-client".into(),
        };
        let html = layer.render().unwrap();
        assert!(html.contains("value=\"&#60;script&#62;\""), "{html}");
        assert!(!html.contains("<script>"));
        assert!(html.contains("set — leave empty to keep it"));
    }
}
