//! The REST API of the record kinds (docs/concepts.md §2). Handlers only translate HTTP to
//! calls of the record service and back.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use grantry_core::filter::{parse_filter_object, parse_list_query};
use grantry_core::service::Selection;
use grantry_core::{Error, Id, Kind};
use serde_json::{json, Value};

use crate::error::{error_object, ApiError};
use crate::extract::{self, JsonBody, QueryPairs};
use crate::AppState;
use grantry_core::access::Caller;

type ApiResult = Result<Response, ApiError>;

pub async fn list(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    let query = parse_list_query(kind, &pairs)?;
    let page = state.records.list(&caller, kind, &query).await?;
    Ok(Json(json!({"items": page.items, "total": page.total, "page": page.page, "per_page": page.per_page}))
        .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    let record = state.records.create(&caller, kind, &body).await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Extension(caller): Extension<Arc<Caller>>,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    Ok(Json(state.records.get(&caller, kind, &extract::id(id)).await?).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    Ok(Json(state.records.patch(&caller, kind, &extract::id(id), &body).await?).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Extension(caller): Extension<Arc<Caller>>,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    // Authorizations are cancelled (tokens revoked) before they go: docs/concepts.md §4.6.
    state.flows.delete(&caller, kind, &extract::id(id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `{"ids": [...]}` or `{"filter": {...}}`; export also takes `{}` for everything.
fn selection(kind: Kind, body: &Value, empty_means_all: bool) -> Result<Selection, Error> {
    let object = body
        .as_object()
        .ok_or_else(|| Error::BadRequest("the body must be a JSON object with `ids` or `filter`".into()))?;
    if let Some(unknown) = object.keys().find(|k| !matches!(k.as_str(), "ids" | "filter")) {
        return Err(Error::BadRequest(format!("unknown member `{unknown}`; give `ids` or `filter`")));
    }
    match (object.get("ids"), object.get("filter")) {
        (Some(_), Some(_)) => Err(Error::BadRequest("give either `ids` or `filter`, not both".into())),
        (Some(Value::Array(ids)), None) => ids
            .iter()
            .map(|id| id.as_str().map(|s| Id::from_string(s.to_owned())))
            .collect::<Option<Vec<_>>>()
            .map(Selection::Ids)
            .ok_or_else(|| Error::BadRequest("`ids` must be a list of id strings".into())),
        (Some(_), None) => Err(Error::BadRequest("`ids` must be a list of id strings".into())),
        (None, Some(filter)) => Ok(Selection::Filter(parse_filter_object(kind, filter)?)),
        (None, None) if empty_means_all => Ok(Selection::Filter(Vec::new())),
        (None, None) => Err(Error::BadRequest(
            "give `ids` or `filter`; to delete every record, send {\"filter\": {}} explicitly".into(),
        )),
    }
}

pub async fn delete_many(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    let selection = selection(kind, &body, false)?;
    let deleted = state.flows.delete_many(&caller, kind, &selection).await?;
    Ok(Json(json!({"deleted": deleted})).into_response())
}

pub async fn export(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    let selection = selection(kind, &body, true)?;
    Ok(Json(state.records.export(&caller, kind, &selection).await?).into_response())
}

pub async fn import(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let kind = extract::kind(&kind)?;
    let report = state.records.import(&caller, kind, &body).await?;
    let failed: Vec<Value> =
        report.failed.iter().map(|(index, error)| json!({"index": index, "error": error_object(error)})).collect();
    Ok(Json(json!({
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "failed": failed,
    }))
    .into_response())
}

pub async fn schema(Path(kind): Path<String>) -> ApiResult {
    let kind = extract::kind(&kind)?;
    Ok(Json(grantry_core::schema::kind_schema(kind)).into_response())
}

pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(&state.public_url))
}
