//! The rules a record must satisfy before it is written (docs/concepts.md
//! §1), and the fields that decide where stored secrets are sent (§8).

use serde_json::Value;

use super::*;

/// The fields that decide where a record's stored secrets (or those that
/// flow through it) are sent; changing one needs `Action::Redirect`.
pub(super) fn destination_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Provider => &[
            "authorization_endpoint",
            "pkce",
            "token_endpoint",
            "token_method",
            "token_endpoint_auth_method",
            "revocation_endpoint",
            "request_token_endpoint",
            "signature_method",
            "refresh_token_strategy",
            "refresh_request",
            "host_parameters",
        ],
        Kind::Client => &["provider", "request_token_parameters", "request_token_headers", "template_parameters"],
        Kind::Authorization => &["client", "template_parameters"],
        Kind::Connection => &[
            "url",
            "host_parameters",
            "headers",
            "parameters",
            "template_parameters",
            "authorization",
            "authorization_handler",
        ],
        Kind::Scope => &[],
    }
}

/// Whether a new record would send the secrets of a record it references to
/// a place of its own choosing: it references a record that holds secrets (a
/// client's identifier and secret, an authorization's tokens or credentials)
/// and sets a destination field of its own.
pub(super) fn redirects_on_create(record: &Record, ctx: &Context) -> bool {
    let uses_secrets = record.refs.values().flatten().filter_map(|id| ctx.get(id)).any(|r| !r.secrets.is_empty());
    let set = |v: &Value| match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(true) | Value::Number(_) => true,
    };
    uses_secrets && destination_fields(record.kind).iter().any(|f| record.data.get(*f).is_some_and(set))
}

/// Whether a change moves where stored secrets go.
pub(super) fn redirects(before: &Record, after: &Record) -> bool {
    destination_fields(before.kind)
        .iter()
        .any(|f| before.refs.get(*f) != after.refs.get(*f) || before.data.get(*f) != after.data.get(*f))
}

/// The templates of a record, each with its field path and where its result goes.
pub(super) fn templates_of(record: &Record) -> Vec<(String, &str, Position)> {
    let mut out = Vec::new();
    for field in record.kind.fields_of(record.rtype) {
        let value = match field.name {
            "name" | "namespace" => Some(&Value::Null),
            _ => record.data.get(field.name),
        };
        match (field.ty, field.renders, value) {
            (FieldType::Template | FieldType::UrlTemplate, Some(position), _) => {
                out.push((field.name.to_owned(), record.text(field.name), position));
            }
            (FieldType::KeyValues, Some(position), Some(Value::Array(items))) => {
                for (i, entry) in items.iter().enumerate() {
                    out.push((format!("{}[{i}].value", field.name), entry["value"].as_str().unwrap_or(""), position));
                }
            }
            (FieldType::RefreshRequest, _, Some(spec)) => {
                out.push(("refresh_request.url".to_owned(), spec["url"].as_str().unwrap_or(""), Position::Url));
                for list in ["headers", "parameters"] {
                    for (i, entry) in spec[list].as_array().into_iter().flatten().enumerate() {
                        let path = format!("refresh_request.{list}[{i}].value");
                        out.push((path, entry["value"].as_str().unwrap_or(""), Position::Request));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The fences of docs/concepts.md §3.3 on a record's templates: no secret variable where
/// it may not go, and URLs whose scheme and host are literal but for
/// declared host parameters.
pub(super) fn check_templates(record: &Record, errors: &mut FieldErrors) {
    let hosts = HostParameter::list(record.data.get("host_parameters"));
    for (path, text, position) in templates_of(record) {
        if text.is_empty() {
            continue;
        }
        match template::forbidden_variables(text, position) {
            Ok(names) => {
                for name in names {
                    let why = if template::SECRET_VARIABLES.contains(&name.as_str()) {
                        "holds a secret"
                    } else {
                        "is not public enough"
                    };
                    errors.add(
                        path.as_str(),
                        format!(
                            "uses `{name}`, which {why} and may not go into {}; secrets go only into headers, \
                             bodies and parameters of requests to the provider or to a connection's destination",
                            position.describe()
                        ),
                    );
                }
            }
            Err(message) => errors.add(path.as_str(), message),
        }
        if position == Position::Url {
            if let Err(message) = template::url::check(text, &hosts) {
                errors.add(path.as_str(), message);
            }
        }
    }
}

/// The rules of docs/concepts.md §1 on a whole record, with the records it references at hand.
pub(super) fn validate(record: &Record, ctx: &Context) -> FieldErrors {
    let mut errors = FieldErrors::default();
    check_templates(record, &mut errors);
    for field in record.kind.fields_of(record.rtype) {
        if field.read_only || !field.is_required_for(record.rtype) {
            continue;
        }
        let present = match field.ty {
            FieldType::Reference(_) | FieldType::References(_) => record.refs.contains_key(field.name),
            FieldType::Secret => record.secrets.contains_key(field.name),
            _ => {
                !record.text(field.name).is_empty()
                    || record.data.get(field.name).is_some_and(|v| !v.is_string() && !v.is_null())
            }
        };
        if !present {
            let message = match field.ty {
                FieldType::Reference(_) => "is required",
                _ => "must not be blank",
            };
            errors.add(field.name, message);
        }
    }
    let referenced = |field: &str| record.reference(field).and_then(|id| ctx.get(id));
    match record.kind {
        Kind::Provider if record.provider_type() == Some(ProviderType::OAuth2) => {
            let custom = record.refresh_strategy() == RefreshStrategy::Custom;
            let has_request = record.data.get("refresh_request").is_some_and(Value::is_object);
            if custom && !has_request {
                errors.add("refresh_request", "is required when refresh_token_strategy is custom");
            }
            if !custom && has_request {
                errors.add("refresh_request", "is only allowed when refresh_token_strategy is custom");
            }
        }
        Kind::Client => refuse_host_header(record, "request_token_headers", &mut errors),
        Kind::Scope => {
            if let Some(provider) = referenced("provider") {
                if provider.provider_type() != Some(ProviderType::OAuth2) {
                    errors.add(
                        "provider",
                        format!("must be an OAuth 2.0 provider; {} is {}", label(provider, ctx), provider.rtype),
                    );
                }
            }
        }
        Kind::Authorization => {
            let provider = referenced("client").and_then(|c| c.key_parent()).and_then(|p| ctx.get(p));
            if let (Some(client), Some(provider)) = (referenced("client"), provider) {
                let has_endpoint = !provider.text("authorization_endpoint").is_empty();
                let (fits, wanted) = match record.authorization_type() {
                    Some(AuthorizationType::OAuth2) => {
                        (provider.provider_type() == Some(ProviderType::OAuth2), "an OAuth 2.0 provider")
                    }
                    Some(AuthorizationType::OAuth1) => {
                        (provider.provider_type() == Some(ProviderType::OAuth1), "an OAuth 1.0a provider")
                    }
                    Some(AuthorizationType::Generic | AuthorizationType::Basic | AuthorizationType::ApiKey) | None => {
                        (has_endpoint, "a provider with an authorization endpoint")
                    }
                };
                if !fits {
                    errors.add("client", format!("must use {wanted}; client {} does not", label(client, ctx)));
                }
                for (i, scope_id) in record.refs.get("scopes").into_iter().flatten().enumerate() {
                    if let Some(scope) = ctx.get(scope_id) {
                        if scope.key_parent() != Some(&provider.id) {
                            errors.add(
                                format!("scopes[{i}]"),
                                format!(
                                    "{} is not a scope of the client's provider {}",
                                    scope.name,
                                    label(provider, ctx)
                                ),
                            );
                        }
                    }
                }
            }
        }
        Kind::Connection => {
            refuse_host_header(record, "headers", &mut errors);
            let handled_by_templates =
                record.data.get("authorization_handler").and_then(Value::as_bool).unwrap_or(false);
            if let (Some(auth), false) = (referenced("authorization"), handled_by_templates) {
                let (list, taken) = added_by(auth);
                for (i, entry) in record.data.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let key = entry["key"].as_str().unwrap_or("");
                    if taken.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(key)) {
                        errors.add(
                            format!("{list}[{i}].key"),
                            format!(
                                "`{key}` is set by authorization {} itself; remove it here or turn authorization_handler on",
                                label(auth, ctx)
                            ),
                        );
                    }
                }
            }
        }
        _ => {}
    }
    errors
}

/// `Host` follows from the URL a request goes to; a header list may not set it.
pub(super) fn refuse_host_header(record: &Record, list: &str, errors: &mut FieldErrors) {
    for (i, entry) in record.data.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
        if entry["key"].as_str().is_some_and(|k| k.eq_ignore_ascii_case("host")) {
            errors.add(format!("{list}[{i}].key"), "`Host` follows from the URL the request goes to and cannot be set");
        }
    }
}

/// Which of a connection's lists an authorization writes into, and the name it
/// sets there: `("headers", "Authorization")`, or an API key's header or parameter.
pub(super) fn added_by(auth: &Record) -> (&'static str, Option<String>) {
    match auth.authorization_type() {
        Some(AuthorizationType::ApiKey) => match auth.choice("placement", Placement::parse, Placement::Header) {
            Placement::Query => ("parameters", Some(auth.text("key_name").to_owned())),
            Placement::Header => ("headers", Some(auth.text("key_name").to_owned())),
        },
        Some(AuthorizationType::Generic) => ("headers", None),
        Some(AuthorizationType::OAuth2 | AuthorizationType::OAuth1 | AuthorizationType::Basic) | None => {
            ("headers", Some("Authorization".to_owned()))
        }
    }
}
