//! Record forms, generated from the kinds' field tables: one widget per field
//! type, and the way back from a submitted form to the API's JSON body, so the
//! UI saves through the same record service and rules as the API.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use grantry_core::{Field, FieldErrors, FieldType, Kind, RecordType};
use serde_json::{json, Map, Value};

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

/// The inputs of a record form for `rtype`, filled from `values` (a record as
/// the API shows it, or what was just submitted), with each field's errors.
pub fn render(
    kind: Kind,
    rtype: RecordType,
    values: &Value,
    errors: &FieldErrors,
    options: &Options,
    prefix: &str,
) -> String {
    let mut html = String::new();
    for field in kind.fields_of(rtype).filter(|f| !f.read_only) {
        let messages = errors_of(field.name, errors);
        let _ = write!(
            html,
            "<div class=\"field{}\" data-field=\"{}\"><label for=\"{prefix}-{}\">{}{}</label>",
            if messages.is_empty() { "" } else { " invalid" },
            field.name,
            field.name,
            escape(&human(field.name)),
            if field.is_required_for(rtype) { " *" } else { "" }
        );
        let value = if field.is_secret() { &values["secrets"][field.name] } else { &values[field.name] };
        html.push_str(&widget(field, value, options, prefix, values));
        let _ = write!(html, "<div class=\"hint\">{}</div>", escape(field.description));
        for m in messages {
            let _ = write!(html, "<div class=\"error\" role=\"alert\">{}</div>", escape(&m));
        }
        html.push_str("</div>");
    }
    html
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

fn widget(field: &Field, value: &Value, options: &Options, prefix: &str, values: &Value) -> String {
    let name = field.name;
    let id = format!("{prefix}-{name}");
    match field.ty {
        FieldType::Enum(choices) => {
            let current = value.as_str().or(field.default).unwrap_or("");
            let mut s = format!("<select id=\"{id}\" name=\"{name}\">");
            for c in choices {
                let _ = write!(s, "<option{}>{}</option>", if *c == current { " selected" } else { "" }, escape(c));
            }
            s + "</select>"
        }
        FieldType::Bool => {
            let on = value.as_bool().unwrap_or(field.default == Some("true"));
            format!(
                "<input type=\"checkbox\" id=\"{id}\" name=\"{name}\" value=\"true\"{}>",
                if on { " checked" } else { "" }
            )
        }
        FieldType::Secret => {
            // Write-only: never filled in; the page says whether a value is stored.
            let state = if value.as_bool() == Some(true) { "set — leave empty to keep it" } else { "not set" };
            format!(
                "<input type=\"password\" id=\"{id}\" name=\"{name}\" autocomplete=\"new-password\" value=\"\">\
                 <div class=\"secret-state\" data-secret=\"{name}\">{state}</div>"
            )
        }
        FieldType::KeyValues => key_values(name, value, prefix),
        FieldType::Object | FieldType::RefreshRequest | FieldType::HostParameters => {
            let text =
                if value.is_null() { String::new() } else { serde_json::to_string_pretty(value).unwrap_or_default() };
            format!("<textarea id=\"{id}\" name=\"{name}\" spellcheck=\"false\">{}</textarea>", escape(&text))
        }
        FieldType::Names => {
            let lines: Vec<String> = value.as_array().into_iter().flatten().map(text_of).collect();
            format!(
                "<textarea id=\"{id}\" name=\"{name}\" placeholder=\"one per line\">{}</textarea>",
                escape(&lines.join("\n"))
            )
        }
        FieldType::Reference(target) => {
            // A type-ahead picker: the label is typed (the datalist narrows as the
            // server answers), the id travels in the hidden input.
            let current = value.get("id").and_then(Value::as_str).or(value.as_str()).unwrap_or("");
            let label = match value.get("id") {
                Some(_) => reference_label(value),
                None => options
                    .get(name)
                    .and_then(|o| o.iter().find(|(oid, _)| oid == current))
                    .map(|(_, l)| l.clone())
                    .unwrap_or_default(),
            };
            let kind = target.as_str();
            let mut s = format!(
                "<div class=\"ref\" data-kind=\"{kind}\"><input type=\"hidden\" id=\"{id}\" name=\"{name}\" value=\"{}\" class=\"ref-id\">\
                 <input type=\"text\" class=\"ref-label\" id=\"{id}-label\" name=\"q\" list=\"{id}-options\" value=\"{}\" \
                 placeholder=\"type to search\" aria-label=\"{}\" autocomplete=\"off\" \
                 hx-get=\"/ui/{kind}/options\" hx-trigger=\"input changed delay:150ms\" hx-target=\"#{id}-options\" hx-params=\"q\">\
                 <datalist id=\"{id}-options\">",
                escape(current),
                escape(&label),
                escape(&human(name))
            );
            for (option_id, option_label) in options.get(name).into_iter().flatten() {
                let _ =
                    write!(s, "<option value=\"{}\" data-id=\"{}\"></option>", escape(option_label), escape(option_id));
            }
            let _ = write!(
                s,
                "</datalist><button type=\"button\" title=\"New {singular}\" aria-label=\"New {singular}\" \
                 hx-get=\"/ui/{kind}/new?nested=1&amp;for={id}\" hx-target=\"#layers\" hx-swap=\"beforeend\">+</button>\
                 <button type=\"button\" data-action=\"ref-edit\" title=\"Edit the {singular}\" aria-label=\"Edit the {singular}\">✎</button>\
                 <button type=\"button\" data-action=\"ref-clear\" title=\"Clear\" aria-label=\"Clear {singular}\">×</button></div>",
                singular = target.singular()
            );
            s
        }
        FieldType::References(_) => {
            let chosen: Vec<&str> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.get("id").and_then(Value::as_str).or(v.as_str()))
                .collect();
            // The scopes of the chosen client's provider; the page reloads them when the client changes.
            let client = &values["client"];
            let client_id = client.get("id").and_then(Value::as_str).or(client.as_str()).unwrap_or("");
            let mut s = format!(
                "<select id=\"{id}\" name=\"{name}\" multiple size=\"6\" data-follows=\"{prefix}-client\" data-choices=\"/ui/scopes/choices?client=\">"
            );
            let choices = options.get(name).into_iter().flatten().filter(|(_, _)| !client_id.is_empty());
            for (option_id, label) in choices {
                let _ = write!(
                    s,
                    "<option value=\"{}\"{}>{}</option>",
                    escape(option_id),
                    if chosen.contains(&option_id.as_str()) { " selected" } else { "" },
                    escape(label)
                );
            }
            s + "</select>"
        }
        _ => format!("<input type=\"text\" id=\"{id}\" name=\"{name}\" value=\"{}\">", escape(&text_of(value))),
    }
}

fn kv_row(name: &str, index: &str, key: &str, value: &str, description: &str) -> String {
    format!(
        "<div class=\"kv-row\"><input type=\"text\" name=\"{name}[{index}][key]\" placeholder=\"key\" aria-label=\"key\" value=\"{}\">\
         <input type=\"text\" name=\"{name}[{index}][value]\" placeholder=\"value\" aria-label=\"value\" value=\"{}\">\
         <input type=\"text\" name=\"{name}[{index}][description]\" placeholder=\"description\" aria-label=\"description\" value=\"{}\">\
         <button type=\"button\" data-action=\"remove-row\" title=\"Remove\">×</button></div>",
        escape(key),
        escape(value),
        escape(description)
    )
}

fn key_values(name: &str, value: &Value, prefix: &str) -> String {
    let rows: Vec<String> = value
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, e)| {
            kv_row(name, &i.to_string(), &text_of(&e["key"]), &text_of(&e["value"]), &text_of(&e["description"]))
        })
        .collect();
    format!(
        "<div class=\"kv\" id=\"{prefix}-{name}\"><div class=\"kv-rows\">{}</div>\
         <template>{}</template><button type=\"button\" data-action=\"add-row\" title=\"Add a row\">+</button></div>",
        rows.join(""),
        kv_row(name, "__INDEX__", "", "", "")
    )
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
    fn widgets_escape_values_and_never_show_secrets() {
        let html = render(
            Kind::Client,
            RecordType::Client(grantry_core::ClientType::RemoteOauth),
            &json!({"name": "<script>", "secrets": {"secret": true}}),
            &FieldErrors::default(),
            &Options::new(),
            "f",
        );
        assert!(html.contains("value=\"&lt;script&gt;\""));
        assert!(html.contains("set — leave empty to keep it"));
        let e = to_body(
            Kind::Authorization,
            RecordType::Authorization(grantry_core::AuthorizationType::OAuth2),
            &pairs(&[("metadata", "{nope")]),
        )
        .unwrap_err();
        assert!(e.0["metadata"][0].starts_with("is not valid JSON"));
    }
}
