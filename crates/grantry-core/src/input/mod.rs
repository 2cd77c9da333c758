//! Turns a JSON request body into checked field values, field by field, with
//! a message per field that says what is wrong. References are kept raw here:
//! resolving them needs storage, which the service does.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::fields::{RefreshField, REFRESH_REQUEST_FIELDS};
use crate::template::RequestBudget;
use crate::{template, AuthorizationType, Error, Field, FieldErrors, FieldType, Kind, RecordType};

/// Longest accepted string of any field; a secret or template may be longer.
const MAX_TEXT: usize = 2048;
const MAX_LONG: usize = 16 * 1024;
/// Most entries of one key/value list (parameters, headers, template parameters).
pub const MAX_PAIRS: usize = 100;
/// Most host parameters of one provider or connection.
const MAX_HOST_PARAMETERS: usize = 10;

/// Keys every response carries that a request may echo back; they are ignored.
const ECHOED: &[&str] = &["id", "type", "label", "created_at", "updated_at", "origin", "secrets"];

/// What a request says about a record, field by field. Absent fields are absent.
#[derive(Default)]
pub struct Input {
    /// Non-secret, non-reference values, normalized. `Null` clears the field.
    pub values: Map<String, Value>,
    /// Reference fields as given (id, natural key, or a new record).
    pub refs: BTreeMap<&'static str, Value>,
    /// Secret fields: `Some` sets, `None` clears.
    pub secrets: BTreeMap<&'static str, Option<SecretString>>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("values", &self.values)
            .field("refs", &self.refs)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The record type named by a body, or the kind's only type.
pub fn record_type(kind: Kind, body: &Map<String, Value>) -> Result<RecordType, Error> {
    if let [only] = kind.types() {
        return Ok(*only);
    }
    let names = || kind.types().iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
    match body.get("type") {
        Some(Value::String(t)) => kind.parse_type(t.trim()).ok_or_else(|| {
            Error::BadRequest(format!("unknown {} type `{t}`; use one of: {}", kind.singular(), names()))
        }),
        Some(_) => Err(Error::BadRequest(format!("`type` must be a string, one of: {}", names()))),
        None => Err(Error::BadRequest(format!("`type` is required for {kind}; use one of: {}", names()))),
    }
}

pub fn parse(
    kind: Kind,
    rtype: RecordType,
    body: &Map<String, Value>,
    budget: &RequestBudget,
) -> Result<Input, FieldErrors> {
    let mut input = Input::default();
    let mut errors = FieldErrors::default();
    let type_label = rtype.label();
    for (key, value) in body {
        if ECHOED.contains(&key.as_str()) {
            continue;
        }
        let Some(field) = kind.field(key) else {
            errors.add(key.as_str(), format!("is not a field of {kind}"));
            continue;
        };
        if field.read_only {
            continue;
        }
        if !field.applies_to(rtype) {
            errors.add(key.as_str(), format!("is not a field of {type_label}"));
            continue;
        }
        match field.ty {
            FieldType::Reference(target) => match value {
                Value::Null | Value::String(_) | Value::Object(_) => {
                    input.refs.insert(field.name, value.clone());
                }
                other => errors.add(
                    field.name,
                    format!(
                        "must be an id, a natural key object or a new {} with its type, not {}",
                        target.singular(),
                        json_type(other)
                    ),
                ),
            },
            FieldType::References(target) => match value {
                Value::Null | Value::Array(_) => {
                    input.refs.insert(field.name, value.clone());
                }
                other => errors.add(
                    field.name,
                    format!("must be a list of {} names or ids, not {}", target.singular(), json_type(other)),
                ),
            },
            FieldType::Secret => match value {
                Value::Null => {
                    input.secrets.insert(field.name, None);
                }
                Value::String(s) if s.len() > MAX_LONG => {
                    errors.add(field.name, format!("must be at most {MAX_LONG} bytes"));
                }
                Value::String(s) => {
                    let s = s.trim();
                    input.secrets.insert(field.name, (!s.is_empty()).then(|| SecretString::from(s.to_owned())));
                }
                // Never echo the value: it may be a secret typed into the wrong shape.
                _ => errors.add(field.name, "must be a string or null"),
            },
            _ => {
                if let Some(v) = parse_value(field.name, field.ty, value, &mut errors, budget) {
                    if owns_reserved_keys(rtype, field.name) {
                        refuse_reserved_keys(field.name, &v, &mut errors);
                    }
                    input.values.insert(field.name.to_owned(), v);
                }
            }
        }
    }
    errors.into_result_with(input)
}

/// The lists whose keys become parameters of Grantry's own OAuth 2.0
/// authorize and token requests (docs/concepts.md §3.5). A generic
/// provider's parameters are its own: only the callback key is Grantry's, and
/// the flow keeps it.
fn owns_reserved_keys(rtype: RecordType, field: &str) -> bool {
    matches!(
        (rtype, field),
        (RecordType::Authorization(AuthorizationType::OAuth2), "parameters")
            | (RecordType::Client(_), "request_token_parameters")
    )
}

fn refuse_reserved_keys(path: &str, list: &Value, errors: &mut FieldErrors) {
    for (i, entry) in list.as_array().into_iter().flatten().enumerate() {
        let key = entry["key"].as_str().unwrap_or("");
        if crate::oauth2::is_reserved(key) {
            errors
                .add(format!("{path}[{i}].key"), format!("`{key}` is set by Grantry itself and cannot be given here"));
        }
    }
}

trait IntoResultWith {
    fn into_result_with<T>(self, value: T) -> Result<T, FieldErrors>;
}

impl IntoResultWith for FieldErrors {
    fn into_result_with<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

fn parse_value(
    path: &str,
    ty: FieldType,
    value: &Value,
    errors: &mut FieldErrors,
    budget: &RequestBudget,
) -> Option<Value> {
    if value.is_null() {
        return Some(Value::Null);
    }
    match ty {
        FieldType::Text | FieldType::Description => string(path, value, MAX_TEXT, errors).map(Value::String),
        FieldType::Template => {
            let s = string(path, value, MAX_LONG, errors)?;
            check_template(path, &s, errors, budget).then_some(Value::String(s))
        }
        FieldType::UrlTemplate => {
            let s = string(path, value, MAX_LONG, errors)?;
            (check_template(path, &s, errors, budget) && check_url(path, &s, errors)).then_some(Value::String(s))
        }
        FieldType::Enum(choices) => {
            let s = string(path, value, MAX_TEXT, errors)?;
            if choices.contains(&s.as_str()) {
                Some(Value::String(s))
            } else {
                errors.add(path, format!("must be one of: {}", choices.join(", ")));
                None
            }
        }
        FieldType::Separator => match value {
            // Not trimmed: a space is a separator.
            Value::String(s) if s.chars().count() <= 1 => Some(Value::String(s.clone())),
            Value::String(_) => {
                errors.add(path, "must be at most one character");
                None
            }
            _ => {
                errors.add(path, "must be a string");
                None
            }
        },
        FieldType::KeyValues => key_values(path, value, errors, budget),
        FieldType::Object => match value {
            Value::Object(_) => Some(value.clone()),
            _ => {
                errors.add(path, "must be a JSON object");
                None
            }
        },
        FieldType::Names => {
            let Value::Array(items) = value else {
                errors.add(path, "must be a list of strings");
                return None;
            };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                if let Some(s) = string(&item_path, item, MAX_TEXT, errors) {
                    if s.is_empty() {
                        errors.add(item_path, "must not be blank");
                    } else if !out.contains(&Value::String(s.clone())) {
                        out.push(Value::String(s));
                    }
                }
            }
            Some(Value::Array(out))
        }
        FieldType::RefreshRequest => refresh_request(path, value, errors, budget),
        FieldType::HostParameters => host_parameters(path, value, errors),
        FieldType::Bool => match value {
            Value::Bool(_) => Some(value.clone()),
            other => {
                errors.add(path, format!("must be true or false, not {}", json_type(other)));
                None
            }
        },
        // Read-only or handled by the caller.
        FieldType::Reference(_) | FieldType::References(_) | FieldType::Secret | FieldType::Timestamp => None,
    }
}

fn string(path: &str, value: &Value, max: usize, errors: &mut FieldErrors) -> Option<String> {
    match value {
        Value::String(s) if s.len() > max => {
            errors.add(path, format!("must be at most {max} bytes"));
            None
        }
        Value::String(s) => Some(s.trim().to_owned()),
        other => {
            errors.add(path, format!("must be a string, not {}", json_type(other)));
            None
        }
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn check_template(path: &str, text: &str, errors: &mut FieldErrors, budget: &RequestBudget) -> bool {
    if let Err(message) = template::check(text) {
        errors.add(path, message);
        return false;
    }
    // A template whose literal loops or strings alone go over the budget; only
    // tags loop or build values, so a template of outputs alone is not run.
    let tried = if text.contains("{%") { template::check_budget(text, budget) } else { Ok(()) };
    if let Err(reason) = tried {
        errors.add_too_expensive(path, format!("is too expensive to render: it {reason} (template_too_expensive)"));
        return false;
    }
    true
}

fn host_parameters(path: &str, value: &Value, errors: &mut FieldErrors) -> Option<Value> {
    let Value::Array(items) = value else {
        errors.add(path, "must be a list of {\"key\", \"pattern\"} objects");
        return None;
    };
    if items.len() > MAX_HOST_PARAMETERS {
        errors.add(path, format!("may hold at most {MAX_HOST_PARAMETERS} entries"));
        return None;
    }
    let before = errors.0.len();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Value::Object(entry) = item else {
            errors.add(item_path, "must be an object with key and pattern");
            continue;
        };
        for extra in entry.keys().filter(|k| !matches!(k.as_str(), "key" | "pattern")) {
            errors.add(format!("{item_path}.{extra}"), "is not a field of a host parameter (key, pattern)");
        }
        let key = entry.get("key").and_then(Value::as_str).unwrap_or("").trim().to_owned();
        let identifier = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier || key.len() > 64 {
            errors.add(format!("{item_path}.key"), "must be a variable name (letters, digits, _)");
        } else if template::SECRET_VARIABLES.contains(&key.as_str()) || key == "identifier" {
            errors.add(format!("{item_path}.key"), format!("`{key}` holds a secret and cannot go into a host"));
        } else if out.iter().any(|e: &Value| e["key"] == key.as_str()) {
            errors.add(format!("{item_path}.key"), format!("`{key}` appears twice; keys must be unique"));
        }
        let pattern = match entry.get("pattern") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.len() <= 512 => Some(p.clone()).filter(|p| !p.is_empty()),
            Some(_) => {
                errors.add(format!("{item_path}.pattern"), "must be a regular expression of at most 512 bytes");
                None
            }
        };
        if let Some(p) = &pattern {
            if let Err(message) = template::url::compile(p) {
                errors.add(format!("{item_path}.pattern"), message);
            }
        }
        out.push(serde_json::json!({"key": key, "pattern": pattern.unwrap_or_else(|| template::url::DEFAULT_HOST_PATTERN.to_owned())}));
    }
    (errors.0.len() == before).then_some(Value::Array(out))
}

/// A URL template must be an http(s) URL once rendered. A template that starts
/// with Liquid cannot be judged before it renders; any other must name the scheme.
/// A URL template names its scheme literally; the host rules need the whole
/// record (its `host_parameters`) and are checked with the record's rules.
fn check_url(path: &str, text: &str, errors: &mut FieldErrors) -> bool {
    if text.is_empty() {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        errors.add(path, "must be an http:// or https:// URL");
        return false;
    }
    if !template::is_template(text) && url::Url::parse(text).is_err() {
        errors.add(path, "must be a valid URL");
        return false;
    }
    true
}

fn key_values(path: &str, value: &Value, errors: &mut FieldErrors, budget: &RequestBudget) -> Option<Value> {
    let Value::Array(items) = value else {
        errors.add(path, "must be a list of {\"key\", \"value\", \"description\"} objects");
        return None;
    };
    if items.len() > MAX_PAIRS {
        errors.add(path, format!("may hold at most {MAX_PAIRS} entries, not {}", items.len()));
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Value::Object(entry) = item else {
            errors.add(item_path, "must be an object with key, value and description");
            ok = false;
            continue;
        };
        for extra in entry.keys().filter(|k| !matches!(k.as_str(), "key" | "value" | "description")) {
            errors.add(format!("{item_path}.{extra}"), "is not a field of a key/value entry (key, value, description)");
            ok = false;
        }
        let key = match entry.get("key") {
            None | Some(Value::Null) => None,
            Some(v) => string(&format!("{item_path}.key"), v, MAX_TEXT, errors),
        };
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            if !errors.0.contains_key(&format!("{item_path}.key")) {
                errors.add(format!("{item_path}.key"), "must not be blank");
            }
            ok = false;
            continue;
        };
        if !seen.insert(key.clone()) {
            errors.add(format!("{item_path}.key"), format!("`{key}` appears twice; keys must be unique"));
            ok = false;
        }
        let val_path = format!("{item_path}.value");
        let val = match entry.get("value") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) if s.len() <= MAX_LONG => s.clone(),
            Some(Value::String(_)) => {
                errors.add(val_path, format!("must be at most {MAX_LONG} bytes"));
                ok = false;
                continue;
            }
            Some(other) => {
                errors.add(val_path, format!("must be a string, not {}", json_type(other)));
                ok = false;
                continue;
            }
        };
        ok &= check_template(&val_path, &val, errors, budget);
        let description = match entry.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(v) => string(&format!("{item_path}.description"), v, MAX_TEXT, errors).unwrap_or_default(),
        };
        out.push(serde_json::json!({"key": key, "value": val, "description": description}));
    }
    ok.then_some(Value::Array(out))
}

fn refresh_request(path: &str, value: &Value, errors: &mut FieldErrors, budget: &RequestBudget) -> Option<Value> {
    let Value::Object(given) = value else {
        errors.add(path, "must be an object with method, url, headers, parameters, body_format and pointers");
        return None;
    };
    let before = errors.0.len();
    for key in given.keys() {
        if !REFRESH_REQUEST_FIELDS.iter().any(|f| f.name == key) {
            errors.add(format!("{path}.{key}"), "is not a field of a refresh request");
        }
    }
    let mut out = Map::new();
    for RefreshField { name, ty, default, required, .. } in REFRESH_REQUEST_FIELDS {
        let sub = format!("{path}.{name}");
        let parsed = match given.get(*name) {
            None | Some(Value::Null) => None,
            Some(v) => parse_value(&sub, *ty, v, errors, budget),
        };
        let parsed = parsed.filter(|v| v.as_str() != Some(""));
        match (parsed, default) {
            (Some(v), _) => {
                if name.ends_with("_pointer") && !v.as_str().unwrap_or("").starts_with('/') {
                    errors.add(sub, "must be a JSON pointer such as /access_token");
                }
                out.insert((*name).to_owned(), v);
            }
            (None, Some(d)) => {
                out.insert((*name).to_owned(), Value::String((*d).to_owned()));
            }
            (None, None) if *required => errors.add(sub, "must not be blank"),
            (None, None) => {
                if *ty == FieldType::KeyValues {
                    out.insert((*name).to_owned(), Value::Array(Vec::new()));
                }
            }
        }
    }
    (errors.0.len() == before).then_some(Value::Object(out))
}

/// The value a create stores for a field the request left out.
pub fn default_value(field: &Field) -> Option<Value> {
    if let Some(d) = field.default {
        return Some(if field.ty == FieldType::Bool { Value::Bool(d == "true") } else { Value::String(d.to_owned()) });
    }
    match field.ty {
        FieldType::KeyValues | FieldType::Names | FieldType::HostParameters => Some(Value::Array(Vec::new())),
        FieldType::Object if !field.read_only => Some(Value::Object(Map::new())),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
