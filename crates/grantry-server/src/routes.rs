//! The one route table of the API. The router is built from it, the auth
//! middleware judges each route's role by its pattern, and a test proves the
//! OpenAPI document lists exactly these routes.

use axum::handler::Handler;
use axum::routing::{any, delete, get, patch, post, MethodRouter};

use crate::{api, oauth, proxy, tokens, AppState};

/// What a route does; `method_router` maps each to its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    List,
    Create,
    Show,
    Update,
    Delete,
    DeleteMany,
    Export,
    Import,
    Schema,
    Authorize,
    Token,
    TokenByKey,
    Refresh,
    Cancel,
    Sign,
    Proxy,
    Notifications,
    ListTokens,
    CreateToken,
    RevokeToken,
    Healthz,
    OpenApi,
    Callback,
    CallbackWithState,
    CallbackResult,
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// An API token; its role is judged by `auth::api_action`.
    Bearer,
    /// Anyone: liveness, the OpenAPI document, and the provider's callback
    /// (whose state is the credential).
    Public,
}

/// The methods a route answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
    /// Every method (the proxy forwards them all).
    Any,
}

impl Method {
    /// The OpenAPI operations of the method.
    pub fn operations(self) -> &'static [&'static str] {
        match self {
            Method::Get => &["get"],
            Method::Post => &["post"],
            Method::Patch => &["patch"],
            Method::Delete => &["delete"],
            Method::Any => &["get", "post", "put", "patch", "delete"],
        }
    }
}

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub access: Access,
    /// Listed in the OpenAPI document (the callback's landing page is not an API).
    pub documented: bool,
}

const fn bearer(method: Method, path: &'static str, endpoint: Endpoint) -> Route {
    Route { method, path, endpoint, access: Access::Bearer, documented: true }
}

const fn public(method: Method, path: &'static str, endpoint: Endpoint, documented: bool) -> Route {
    Route { method, path, endpoint, access: Access::Public, documented }
}

pub const ROUTES: &[Route] = &[
    bearer(Method::Get, "/api/v1/{kind}", Endpoint::List),
    bearer(Method::Post, "/api/v1/{kind}", Endpoint::Create),
    bearer(Method::Get, "/api/v1/{kind}/{id}", Endpoint::Show),
    bearer(Method::Patch, "/api/v1/{kind}/{id}", Endpoint::Update),
    bearer(Method::Delete, "/api/v1/{kind}/{id}", Endpoint::Delete),
    bearer(Method::Post, "/api/v1/{kind}/delete", Endpoint::DeleteMany),
    bearer(Method::Post, "/api/v1/{kind}/export", Endpoint::Export),
    bearer(Method::Post, "/api/v1/{kind}/import", Endpoint::Import),
    bearer(Method::Get, "/api/v1/{kind}/schema", Endpoint::Schema),
    bearer(Method::Post, "/api/v1/authorizations/{id}/authorize", Endpoint::Authorize),
    bearer(Method::Get, "/api/v1/authorizations/{id}/token", Endpoint::Token),
    bearer(Method::Get, "/api/v1/authorizations/by-key/{namespace}/{name}/token", Endpoint::TokenByKey),
    bearer(Method::Post, "/api/v1/authorizations/{id}/refresh", Endpoint::Refresh),
    bearer(Method::Post, "/api/v1/authorizations/{id}/cancel", Endpoint::Cancel),
    bearer(Method::Post, "/api/v1/authorizations/{id}/sign", Endpoint::Sign),
    bearer(Method::Any, "/api/v1/connections/{id}/proxy", Endpoint::Proxy),
    bearer(Method::Any, "/api/v1/connections/{id}/proxy/{*path}", Endpoint::Proxy),
    bearer(Method::Get, "/api/v1/notifications", Endpoint::Notifications),
    bearer(Method::Get, "/api/v1/api-tokens", Endpoint::ListTokens),
    bearer(Method::Post, "/api/v1/api-tokens", Endpoint::CreateToken),
    bearer(Method::Delete, "/api/v1/api-tokens/{id}", Endpoint::RevokeToken),
    public(Method::Get, "/healthz", Endpoint::Healthz, true),
    public(Method::Get, "/api/v1/openapi.json", Endpoint::OpenApi, true),
    public(Method::Get, "/oauth/callback", Endpoint::Callback, true),
    public(Method::Get, "/oauth/callback/{state}", Endpoint::CallbackWithState, false),
    public(Method::Get, "/oauth/result", Endpoint::CallbackResult, false),
];

/// The handler of a route.
pub fn method_router(route: &Route) -> MethodRouter<AppState> {
    let m = route.method;
    match route.endpoint {
        Endpoint::List => on(m, api::list),
        Endpoint::Create => on(m, api::create),
        Endpoint::Show => on(m, api::show),
        Endpoint::Update => on(m, api::update),
        Endpoint::Delete => on(m, api::delete),
        Endpoint::DeleteMany => on(m, api::delete_many),
        Endpoint::Export => on(m, api::export),
        Endpoint::Import => on(m, api::import),
        Endpoint::Schema => on(m, api::schema),
        Endpoint::Authorize => on(m, oauth::authorize),
        Endpoint::Token => on(m, oauth::token),
        Endpoint::TokenByKey => on(m, oauth::token_by_key),
        Endpoint::Refresh => on(m, oauth::refresh),
        Endpoint::Cancel => on(m, oauth::cancel),
        Endpoint::Sign => on(m, oauth::sign),
        Endpoint::Proxy => on(m, proxy::forward),
        Endpoint::Notifications => on(m, oauth::notifications),
        Endpoint::ListTokens => on(m, tokens::list),
        Endpoint::CreateToken => on(m, tokens::create),
        Endpoint::RevokeToken => on(m, tokens::revoke),
        Endpoint::Healthz => on(m, crate::healthz),
        Endpoint::OpenApi => on(m, api::openapi),
        Endpoint::Callback => on(m, oauth::callback),
        Endpoint::CallbackWithState => on(m, oauth::callback_with_state),
        Endpoint::CallbackResult => on(m, oauth::result),
    }
}

/// `handler` for the method of the table.
fn on<H, T>(method: Method, handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    match method {
        Method::Get => get(handler),
        Method::Post => post(handler),
        Method::Patch => patch(handler),
        Method::Delete => delete(handler),
        Method::Any => any(handler),
    }
}

/// The routes with `access`, each path once with all its methods.
pub fn grouped(access: Access) -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut out: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for route in ROUTES.iter().filter(|r| r.access == access) {
        let handler = method_router(route);
        match out.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => out.push((route.path, handler)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use grantry_core::Kind;

    use super::*;

    /// Every (method, concrete path) a set of routes stands for: `{kind}` for
    /// each kind, `{*path}` as OpenAPI writes it, `any` as the methods the
    /// document lists for the proxy.
    fn expand(method: Method, path: &str) -> Vec<(String, String)> {
        let methods = method.operations();
        let paths: Vec<String> = if path.contains("{kind}") {
            Kind::ALL.iter().map(|k| path.replace("{kind}", k.as_str())).collect()
        } else {
            vec![path.replace("{*path}", "{path}")]
        };
        paths.iter().flat_map(|p| methods.iter().map(move |m| ((*m).to_owned(), p.clone()))).collect()
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_of_the_table() {
        let document = crate::openapi::document("http://127.0.0.1:8080");
        let mut documented = BTreeSet::new();
        for (path, operations) in document["paths"].as_object().into_iter().flatten() {
            for method in operations.as_object().into_iter().flatten().map(|(m, _)| m).filter(|m| *m != "parameters") {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let mut routed = BTreeSet::new();
        for route in ROUTES.iter().filter(|r| r.documented) {
            // The proxy's bare path is the same endpoint as its `{*path}` form, documented once.
            if route.endpoint == Endpoint::Proxy && !route.path.ends_with("{*path}") {
                continue;
            }
            routed.extend(expand(route.method, route.path));
        }
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(missing.is_empty(), "routes the OpenAPI document does not list: {missing:?}");
        assert!(extra.is_empty(), "OpenAPI operations no route serves: {extra:?}");
    }

    #[test]
    fn every_bearer_route_of_the_table_has_its_role_rule() {
        // A route missing from `auth::api_action` would need the admin role by
        // default; the table's bearer routes are all named there.
        for route in ROUTES.iter().filter(|r| r.access == Access::Bearer) {
            let method = match route.method {
                Method::Get | Method::Any => axum::http::Method::GET,
                Method::Post => axum::http::Method::POST,
                Method::Patch => axum::http::Method::PATCH,
                Method::Delete => axum::http::Method::DELETE,
            };
            let sample = route.path.replace("{kind}", "providers").replace("{id}", "x").replace("{*path}", "p");
            let action = crate::auth::api_action(&method, route.path, &sample);
            let token_routes =
                matches!(route.endpoint, Endpoint::ListTokens | Endpoint::CreateToken | Endpoint::RevokeToken);
            assert_eq!(
                action == grantry_core::access::Action::ManageTokens,
                token_routes,
                "{:?} {} has action {action:?}",
                route.method,
                route.path
            );
        }
    }
}
