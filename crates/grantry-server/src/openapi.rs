//! The OpenAPI 3.1 document, generated from the kinds' field tables and the
//! route table (`routes::ROUTES`; a test there proves they agree).

use grantry_core::filter::{Op, MAX_PER_PAGE};
use grantry_core::schema::kind_schema;
use grantry_core::{ErrorCode, Kind, NotificationLevel};
use serde_json::{json, Map, Value};

use crate::routes::ROUTES;

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn operation(kind: Kind, method: &str, path: &str) -> Value {
    let name = kind.as_str();
    let record = json!({"$ref": format!("#/components/schemas/{}", schema_name(kind))});
    let selection = json!({"type": "object", "properties": {
        "ids": {"type": "array", "items": {"type": "string"}},
        "filter": {"type": "object", "description": "The list query's filter keys: {\"namespace\": \"Slack\", \"name[contains]\": \"bot\"}"}
    }});
    let id_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let mut op = match (method, path) {
        ("get", "/api/v1/{kind}") => json!({
            "summary": format!("List {name}"),
            "parameters": [
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 25}},
                {"name": "sort", "in": "query", "description": "Comma-separated fields, `-` for descending, e.g. -updated_at", "schema": {"type": "string"}},
                {"name": "filter", "in": "query", "style": "deepObject", "explode": true,
                 "description": format!("`field=value` or `field[op]=value` with op one of {}; references by natural key, e.g. provider.namespace=Slack",
                     Op::ALL.map(Op::as_str).join(", ")),
                 "schema": {"type": "object", "additionalProperties": {"type": "string"}}}
            ],
            "responses": {"200": json_response("One page", json!({"type": "object", "required": ["items", "total", "page", "per_page"], "properties": {
                "items": {"type": "array", "items": record}, "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}})),
                "400": error_response("Unknown filter field or operator")}
        }),
        ("post", "/api/v1/{kind}") => json!({
            "summary": format!("Create one of {name}"),
            "requestBody": json_body(record.clone()),
            "responses": {"201": json_response("Created", record.clone()), "400": error_response("Malformed JSON or unknown type"),
                "413": error_response("Body over 1 MiB"), "422": error_response("Validation failed")}
        }),
        ("get", "/api/v1/{kind}/{id}") => json!({
            "summary": format!("Show one of {name}"), "parameters": [id_param],
            "responses": {"200": json_response("The record", record.clone()), "404": error_response("No such record")}
        }),
        ("patch", "/api/v1/{kind}/{id}") => json!({
            "summary": format!("Change fields of one of {name}; a secret left out is kept, null clears it"), "parameters": [id_param],
            "requestBody": json_body(json!({"type": "object"})),
            "responses": {"200": json_response("The record", record.clone()), "404": error_response("No such record"), "422": error_response("Validation failed")}
        }),
        ("delete", "/api/v1/{kind}/{id}") => json!({
            "summary": format!("Delete one of {name}"), "parameters": [id_param],
            "responses": {"204": {"description": "Deleted"}, "404": error_response("No such record"), "409": error_response("Still referenced")}
        }),
        ("post", "/api/v1/{kind}/delete") => json!({
            "summary": format!("Delete {name} by ids or by filter"),
            "requestBody": json_body(selection),
            "responses": {"200": json_response("Deleted", json!({"type": "object", "properties": {"deleted": {"type": "integer"}}})),
                "409": error_response("Still referenced; nothing deleted")}
        }),
        ("post", "/api/v1/{kind}/export") => json!({
            "summary": format!("Export {name}: natural-key references, no ids, no secrets"),
            "requestBody": json_body(selection),
            "responses": {"200": json_response("The records", json!({"type": "array", "items": {"type": "object"}}))}
        }),
        ("post", "/api/v1/{kind}/import") => json!({
            "summary": format!("Import {name}: upsert by natural key"),
            "requestBody": json_body(json!({"type": "array", "items": {"type": "object"}})),
            "responses": {"200": json_response("What happened", json!({"type": "object", "properties": {
                "created": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
                "failed": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "error": {"$ref": "#/components/schemas/ErrorObject"}}}}}}))}
        }),
        ("get", "/api/v1/{kind}/schema") => json!({
            "summary": format!("The JSON Schema of {name}"),
            "responses": {"200": json_response("JSON Schema", json!({"type": "object"}))}
        }),
        _ => json!({}),
    };
    if let Some(o) = op.as_object_mut() {
        o.insert(
            "operationId".into(),
            json!(format!(
                "{method}_{}",
                path.replace("{kind}", name).trim_start_matches("/api/v1/").replace(['/', '{', '}'], "_")
            )),
        );
        o.insert("tags".into(), json!([name]));
        let responses = o.entry("responses").or_insert_with(|| json!({}));
        if let Some(r) = responses.as_object_mut() {
            for (status, response) in bearer_responses() {
                r.insert(status.into(), response);
            }
        }
    }
    op
}

/// What every route behind a bearer token may answer besides its own.
fn bearer_responses() -> [(&'static str, Value); 3] {
    [
        ("401", error_response("Missing, unknown, revoked or expired API token")),
        ("403", error_response("forbidden: the token's role may not do this; the message names the role needed")),
        ("429", error_response("too_many_requests: too many failed tokens from this address; see Retry-After")),
    ]
}

fn schema_name(kind: Kind) -> String {
    kind.title().replace([' ', '.'], "")
}

pub fn document(server_url: &str) -> Value {
    let mut paths = Map::new();
    for kind in Kind::ALL {
        for route in ROUTES.iter().filter(|r| r.path.starts_with("/api/v1/{kind}")) {
            let (method, path) = (route.method.operations()[0], route.path);
            let concrete = path.replace("{kind}", kind.as_str());
            let entry = paths.entry(concrete).or_insert_with(|| json!({}));
            if let Some(o) = entry.as_object_mut() {
                o.insert((*method).to_owned(), operation(kind, method, path));
            }
        }
    }
    for (path, methods) in oauth_paths() {
        paths.insert(path.into(), methods);
    }
    paths.insert(
        "/api/v1/openapi.json".into(),
        json!({"get": {"operationId": "openapi", "summary": "This document", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1"}}}}),
    );
    paths.insert(
        "/healthz".into(),
        json!({"get": {"operationId": "healthz", "summary": "Liveness; no token needed", "security": [],
        "responses": {"200": {"description": "ok"}}}}),
    );
    let mut schemas = Map::new();
    for kind in Kind::ALL {
        let mut schema = kind_schema(kind);
        if let Some(o) = schema.as_object_mut() {
            o.remove("$schema");
            o.remove("$id");
        }
        schemas.insert(schema_name(kind), schema);
    }
    schemas.insert(
        "ErrorObject".into(),
        json!({"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "enum": ErrorCode::NAMES},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "referrers": {"type": "array", "items": {"type": "object"}}}}),
    );
    schemas.insert("Error".into(), json!({"type": "object", "required": ["error"], "properties": {"error": {"$ref": "#/components/schemas/ErrorObject"}}}));
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Grantry", "version": env!("CARGO_PKG_VERSION"),
                 "description": "OAuth credentials for integrations: providers, scopes, clients and authorizations."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}
    })
}

/// The OAuth 2.0 routes (docs/concepts.md §4) beside the record routes.
fn oauth_paths() -> Vec<(&'static str, Value)> {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let record = json!({"$ref": "#/components/schemas/Authorization"});
    let token = json!({"type": "object", "required": ["access_token", "token_type", "expires_at", "authorization_header"], "properties": {
        "access_token": {"type": "string"}, "token_type": {"type": "string"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"}, "authorization_header": {"type": "string"}}});
    let states = "409: not_authorized, authorization_failed, token_expired, refresh_not_supported, not_supported";
    let with_401 = |mut responses: Value| {
        for (status, response) in bearer_responses() {
            responses[status] = response;
        }
        responses
    };
    let api_token = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "role": {"type": "string", "enum": ["admin", "editor", "viewer", "integration"]},
        "created_at": {"type": "string", "format": "date-time"}, "expires_at": {"type": ["string", "null"], "format": "date-time"}}});
    vec![
        (
            "/api/v1/authorizations/{id}/authorize",
            json!({"post": {
            "operationId": "authorize", "tags": ["authorizations"], "parameters": id,
            "summary": "Start the grant: an authorize URL for the browser, or (client credentials) the token request itself",
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {
                "return_to": {"type": "string", "format": "uri", "description": "Where the callback sends the browser, with ?authorization=&status=[&error=]"}}}}}},
            "responses": with_401(json!({"200": json_response("{\"authorize_url\"} or the authorization record", json!({"oneOf": [
                {"type": "object", "properties": {"authorize_url": {"type": "string"}}}, record.clone()]})),
                "409": error_response(states), "422": error_response("return_to is not a URL")}))}}),
        ),
        (
            "/api/v1/authorizations/{id}/token",
            json!({"get": {
            "operationId": "fresh_token", "tags": ["authorizations"], "parameters": id,
            "summary": "A usable access token, refreshed first when it expires within the refresh margin",
            "responses": with_401(json!({"200": json_response("The token", token.clone()), "409": error_response(states),
                "503": error_response("provider_unavailable: the provider could not be reached to refresh")}))}}),
        ),
        (
            "/api/v1/authorizations/by-key/{namespace}/{name}/token",
            json!({"get": {
            "operationId": "fresh_token_by_key", "tags": ["authorizations"],
            "parameters": [{"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}},
                           {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            "summary": "The same, by the authorization's natural key",
            "responses": with_401(json!({"200": json_response("The token", token), "409": error_response(states)}))}}),
        ),
        (
            "/api/v1/authorizations/{id}/refresh",
            json!({"post": {
            "operationId": "refresh", "tags": ["authorizations"], "parameters": id, "summary": "Refresh now",
            "responses": with_401(json!({"200": json_response("The authorization", record.clone()), "409": error_response(states),
                "503": error_response("provider_unavailable")}))}}),
        ),
        (
            "/api/v1/authorizations/{id}/cancel",
            json!({"post": {
            "operationId": "cancel", "tags": ["authorizations"], "parameters": id,
            "summary": "Revoke at the provider when it has a revocation endpoint, then clear every token",
            "responses": with_401(json!({"200": json_response("The authorization", record)}))}}),
        ),
        (
            "/api/v1/notifications",
            json!({"get": {
            "operationId": "list_notifications", "tags": ["notifications"], "summary": "What happened to authorizations, newest first",
            "parameters": [{"name": "authorization", "in": "query", "schema": {"type": "string"}},
                           {"name": "level", "in": "query", "schema": {"type": "string", "enum": NotificationLevel::NAMES}},
                           {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                           {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}}],
            "responses": with_401(json!({"200": json_response("One page", json!({"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "level": {"type": "string"},
                    "authorization": {"type": ["object", "null"]}, "message": {"type": "string"}, "created_at": {"type": "string"}}}},
                "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}}))}))}}),
        ),
        (
            "/api/v1/authorizations/{id}/sign",
            json!({"post": {
            "operationId": "sign", "tags": ["authorizations"], "parameters": id,
            "summary": "The headers and query parameters that authorize a request, for any type of authorization",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["url"], "properties": {
                "method": {"type": "string", "default": "GET"}, "url": {"type": "string", "format": "uri"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}}, "body": {"type": "string"}}}}}},
            "responses": with_401(json!({"200": json_response("What to add", json!({"type": "object", "properties": {
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "query": {"type": "object", "additionalProperties": {"type": "string"}}}})),
                "409": error_response(states), "422": error_response("url or method is wrong")}))}}),
        ),
        (
            "/api/v1/connections/{id}/proxy/{path}",
            json!({"parameters": [
                {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                {"name": "path", "in": "path", "required": true, "schema": {"type": "string"}, "description": "appended to the connection's url"}],
            "get": proxy_operation("proxy_get"), "post": proxy_operation("proxy_post"), "put": proxy_operation("proxy_put"),
            "patch": proxy_operation("proxy_patch"), "delete": proxy_operation("proxy_delete")}),
        ),
        (
            "/api/v1/api-tokens",
            json!({
            "get": {"operationId": "list_api_tokens", "tags": ["api-tokens"], "summary": "Every API token, without its value (admin)",
                "responses": with_401(json!({"200": json_response("The tokens", json!({"type": "object", "properties": {
                    "items": {"type": "array", "items": api_token.clone()}}}))}))},
            "post": {"operationId": "create_api_token", "tags": ["api-tokens"],
                "summary": "Mint a token; its value is in this answer only (admin)",
                "requestBody": json_body(json!({"type": "object", "required": ["name", "role"], "properties": {
                    "name": {"type": "string"}, "role": {"type": "string", "enum": ["admin", "editor", "viewer", "integration"]},
                    "expires_at": {"type": "string", "format": "date-time"}}})),
                "responses": with_401(json!({"201": json_response("The token with its value in `token`", api_token),
                    "422": error_response("A field is wrong")}))}}),
        ),
        (
            "/api/v1/api-tokens/{id}",
            json!({"delete": {"operationId": "revoke_api_token", "tags": ["api-tokens"], "parameters": id,
                "summary": "Revoke a token: it stops working at once, and the UI sessions signed in with it end (admin)",
                "responses": with_401(json!({"204": {"description": "Revoked"}, "404": error_response("No such token")}))}}),
        ),
        (
            "/oauth/callback",
            json!({"get": {
            "operationId": "oauth_callback", "tags": ["oauth"], "security": [],
            "summary": "Where providers send the browser back; the state is the credential",
            "parameters": [{"name": "state", "in": "query", "required": true, "schema": {"type": "string"}},
                           {"name": "code", "in": "query", "schema": {"type": "string"}},
                           {"name": "error", "in": "query", "schema": {"type": "string"}},
                           {"name": "error_description", "in": "query", "schema": {"type": "string"}}],
            "responses": {"303": {"description": "To return_to (or the result page) with ?authorization=&status=[&error=]"},
                          "400": {"description": "Unknown, used or expired state: an HTML page; nothing changed"}}}}),
        ),
    ]
}

fn proxy_operation(operation_id: &str) -> Value {
    json!({
        "operationId": operation_id, "tags": ["connections"],
        "summary": "Forward the request through the connection with its authorization applied; the remote answer is streamed back",
        "responses": {
            "default": {"description": "The remote API's status, headers and body"},
            "401": error_response("Missing or invalid API token (a remote 401 is passed through after one refresh and retry)"),
            "400": error_response("A path with `.` or `..` segments"),
            "403": error_response("forbidden: only admin and integration tokens may use the proxy"),
            "409": error_response("The authorization cannot be used, or the destination address is refused"),
            "413": error_response("A request body over 1 MiB"),
            "503": error_response("provider_unavailable: the remote API could not be reached")
        }
    })
}
