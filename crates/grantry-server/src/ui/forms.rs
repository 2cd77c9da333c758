//! Record forms, generated from the kinds' field tables: a typed view of each
//! field with one widget per field type (`templates/form_fields.html` renders
//! them, and askama escapes what they carry), and the way back from a
//! submitted form to the API's JSON body, so the UI saves through the same
//! record service and rules as the API.

use std::collections::BTreeMap;

use grantry_core::{Field, FieldErrors, FieldType, Kind, RecordType};
use serde_json::{json, Map, Value};

/// For the one page built without a template (`page_error`).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// `client_secret_post` → "Client secret post".
pub fn human(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

/// Choices of a reference field: (id, label).
pub type Options = BTreeMap<&'static str, Vec<(String, String)>>;

fn errors_of(field: &str, errors: &FieldErrors) -> Vec<String> {
    errors
        .0
        .iter()
        .filter(|(path, _)| {
            *path == field || path.starts_with(&format!("{field}[")) || path.starts_with(&format!("{field}."))
        })
        .flat_map(|(path, messages)| {
            messages.iter().map(move |m| if path == field { m.clone() } else { format!("{path}: {m}") })
        })
        .collect()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One input of a record form, as `templates/form_fields.html` shows it.
pub struct FieldView {
    pub name: &'static str,
    /// The id of the input, `{prefix}-{name}`: unique on the page.
    pub id: String,
    pub label: String,
    pub required: bool,
    pub hint: &'static str,
    pub errors: Vec<String>,
    pub kind: FieldKind,
}

/// The widget of a field, by field type.
pub enum FieldKind {
    /// One of an enum's values.
    Select {
        options: Vec<EnumChoice>,
    },
    Checkbox {
        checked: bool,
    },
    /// Write-only: never filled in; the page says whether a value is stored.
    Secret {
        is_set: bool,
    },
    KeyValues {
        rows: Vec<KeyValueRow>,
    },
    /// A JSON value, pretty-printed.
    Json {
        text: String,
    },
    /// A list of names, one per line.
    Lines {
        text: String,
    },
    /// A type-ahead picker: the label is typed (the datalist narrows as the
    /// server answers), the id travels in the hidden input.
    Reference {
        kind: &'static str,
        singular: &'static str,
        value: String,
        text: String,
        options: Vec<Choice>,
    },
    /// The scopes of the chosen client's provider; the page reloads them when
    /// the client (the input `follows`) changes.
    References {
        follows: String,
        options: Vec<Choice>,
    },
    Text {
        value: String,
    },
}

pub struct EnumChoice {
    pub value: &'static str,
    pub selected: bool,
}

/// A record to choose: its id and label.
pub struct Choice {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub fn new((id, label): &(String, String), selected: bool) -> Choice {
        Choice { id: id.clone(), label: label.clone(), selected }
    }
}

pub struct KeyValueRow {
    pub index: usize,
    pub key: String,
    pub value: String,
    pub description: String,
}

/// The inputs of a record form for `rtype`, filled from `values` (a record as
/// the API shows it, or what was just submitted), with each field's errors.
pub fn fields(
    kind: Kind,
    rtype: RecordType,
    values: &Value,
    errors: &FieldErrors,
    options: &Options,
    prefix: &str,
) -> Vec<FieldView> {
    kind.fields_of(rtype)
        .filter(|f| !f.read_only)
        .map(|field| {
            let value = if field.is_secret() { &values["secrets"][field.name] } else { &values[field.name] };
            FieldView {
                name: field.name,
                id: format!("{prefix}-{}", field.name),
                label: human(field.name),
                required: field.is_required_for(rtype),
                hint: field.description,
                errors: errors_of(field.name, errors),
                kind: widget(field, value, options, prefix, values),
            }
        })
        .collect()
}

/// The label of a reference as the API shows it (`{"id", natural key}`).
pub fn reference_label(value: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(parent) = value.get("provider").filter(|p| p.is_object()) {
        parts.push(reference_label(parent));
    }
    if let Some(ns) = value.get("namespace").and_then(Value::as_str).filter(|ns| !ns.is_empty()) {
        parts.push(ns.to_owned());
    }
    if let Some(name) = value.get("name").and_then(Value::as_str) {
        parts.push(name.to_owned());
    }
    parts.join(" | ")
}

fn widget(field: &Field, value: &Value, options: &Options, prefix: &str, values: &Value) -> FieldKind {
    let name = field.name;
    match field.ty {
        FieldType::Enum(choices) => {
            let current = value.as_str().or(field.default).unwrap_or("");
            FieldKind::Select {
                options: choices.iter().map(|c| EnumChoice { value: c, selected: *c == current }).collect(),
            }
        }
        FieldType::Bool => FieldKind::Checkbox { checked: value.as_bool().unwrap_or(field.default == Some("true")) },
        FieldType::Secret => FieldKind::Secret { is_set: value.as_bool() == Some(true) },
        FieldType::KeyValues => FieldKind::KeyValues {
            rows: value
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(index, e)| KeyValueRow {
                    index,
                    key: text_of(&e["key"]),
                    value: text_of(&e["value"]),
                    description: text_of(&e["description"]),
                })
                .collect(),
        },
        FieldType::Object | FieldType::RefreshRequest | FieldType::HostParameters => FieldKind::Json {
            text: if value.is_null() { String::new() } else { serde_json::to_string_pretty(value).unwrap_or_default() },
        },
        FieldType::Names => {
            let lines: Vec<String> = value.as_array().into_iter().flatten().map(text_of).collect();
            FieldKind::Lines { text: lines.join("\n") }
        }
        FieldType::Reference(target) => {
            let current = value.get("id").and_then(Value::as_str).or(value.as_str()).unwrap_or("");
            let text = match value.get("id") {
                Some(_) => reference_label(value),
                None => options
                    .get(name)
                    .and_then(|o| o.iter().find(|(oid, _)| oid == current))
                    .map(|(_, l)| l.clone())
                    .unwrap_or_default(),
            };
            FieldKind::Reference {
                kind: target.as_str(),
                singular: target.singular(),
                value: current.to_owned(),
                text,
                options: options.get(name).into_iter().flatten().map(|o| Choice::new(o, false)).collect(),
            }
        }
        FieldType::References(_) => {
            let chosen: Vec<&str> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.get("id").and_then(Value::as_str).or(v.as_str()))
                .collect();
            let client = &values["client"];
            let client_id = client.get("id").and_then(Value::as_str).or(client.as_str()).unwrap_or("");
            let options = match client_id {
                "" => Vec::new(),
                _ => options
                    .get(name)
                    .into_iter()
                    .flatten()
                    .map(|o| Choice::new(o, chosen.contains(&o.0.as_str())))
                    .collect(),
            };
            FieldKind::References { follows: format!("{prefix}-client"), options }
        }
        _ => FieldKind::Text { value: text_of(value) },
    }
}

/// A submitted form as the API's JSON body. Secrets left empty are left out
/// (the stored value stays); JSON fields that do not parse are field errors.
pub fn to_body(kind: Kind, rtype: RecordType, pairs: &[(String, String)]) -> Result<Value, FieldErrors> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut body = Map::new();
    let mut errors = FieldErrors::default();
    if !kind.has_single_type() {
        body.insert("type".into(), json!(rtype.as_str()));
    }
    for field in kind.fields_of(rtype).filter(|f| !f.read_only) {
        let name = field.name;
        let value = match field.ty {
            FieldType::Secret => match get(name).map(str::trim) {
                Some(v) if !v.is_empty() => json!(v),
                _ => continue,
            },
            FieldType::Bool => json!(get(name) == Some("true")),
            FieldType::KeyValues => {
                let mut rows: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
                let prefix = format!("{name}[");
                for (k, v) in pairs {
                    let Some(rest) = k.strip_prefix(&prefix) else { continue };
                    let Some((index, part)) = rest.split_once("][") else { continue };
                    let (Ok(index), Some(part)) = (index.parse::<usize>(), part.strip_suffix(']')) else { continue };
                    rows.entry(index).or_default().insert(part.to_owned(), json!(v));
                }
                let list: Vec<Value> = rows
                    .into_values()
                    .filter(|r| r.values().any(|v| v.as_str().is_some_and(|s| !s.trim().is_empty())))
                    .map(Value::Object)
                    .collect();
                Value::Array(list)
            }
            FieldType::Object | FieldType::RefreshRequest | FieldType::HostParameters => match get(name).map(str::trim)
            {
                None => continue,
                Some("") => Value::Null,
                Some(text) => match serde_json::from_str::<Value>(text) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.add(name, format!("is not valid JSON: {e}"));
                        continue;
                    }
                },
            },
            FieldType::Names => match get(name) {
                None => continue,
                Some(text) => {
                    Value::Array(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| json!(l)).collect())
                }
            },
            FieldType::Reference(_) => match get(name) {
                None => continue,
                Some("") => Value::Null,
                Some(id) => json!(id),
            },
            FieldType::References(_) => {
                Value::Array(pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| json!(v)).collect())
            }
            FieldType::Enum(_) => match get(name) {
                None | Some("") => continue,
                Some(v) => json!(v),
            },
            _ => match get(name) {
                None => continue,
                Some(v) => json!(v),
            },
        };
        body.insert(name.to_owned(), value);
    }
    if errors.is_empty() {
        Ok(Value::Object(body))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_submitted_client_form_becomes_the_api_body() {
        let body = to_body(
            Kind::Client,
            RecordType::Client(grantry_core::ClientType::RemoteOauth),
            &pairs(&[
                ("provider", "p1"),
                ("namespace", ""),
                ("name", "main"),
                ("identifier", "id-1"),
                ("secret", ""),
                ("request_token_parameters[0][key]", "audience"),
                ("request_token_parameters[0][value]", "api"),
                ("request_token_parameters[0][description]", ""),
                ("request_token_parameters[3][key]", ""),
                ("request_token_parameters[3][value]", ""),
            ]),
        )
        .unwrap();
        assert_eq!(body["type"], "remote_oauth");
        assert_eq!(body["provider"], "p1");
        assert_eq!(body["identifier"], "id-1");
        assert!(body.get("secret").is_none(), "an empty secret keeps the stored one");
        assert_eq!(body["request_token_parameters"], json!([{"key": "audience", "value": "api", "description": ""}]));
    }

    #[test]
    fn json_that_does_not_parse_is_a_field_error() {
        let e = to_body(
            Kind::Authorization,
            RecordType::Authorization(grantry_core::AuthorizationType::OAuth2),
            &pairs(&[("metadata", "{nope")]),
        )
        .unwrap_err();
        assert!(e.0["metadata"][0].starts_with("is not valid JSON"));
    }

    #[test]
    fn a_secret_field_shows_only_whether_it_is_set() {
        let fields = fields(
            Kind::Client,
            RecordType::Client(grantry_core::ClientType::RemoteOauth),
            &json!({"name": "n", "secret": "leaked", "secrets": {"secret": true}}),
            &FieldErrors::default(),
            &Options::new(),
            "f",
        );
        let secret = fields.iter().find(|f| f.name == "secret").unwrap();
        assert!(matches!(secret.kind, FieldKind::Secret { is_set: true }));
    }
}
