//! The JSON Schema of each record kind (the "data type" of the generic menu),
//! generated from the field table.

use serde_json::{json, Map, Value};

use crate::fields::REFRESH_REQUEST_FIELDS;
use crate::{FieldType, Kind};

fn key_values_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["key"],
            "additionalProperties": false,
            "properties": {
                "key": {"type": "string", "minLength": 1},
                "value": {"type": "string", "description": "A Liquid template."},
                "description": {"type": "string"}
            }
        }
    })
}

fn reference_schema(target: Kind) -> Value {
    let key = match target.key_parent() {
        None => {
            json!({"type": "object", "required": ["name"], "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}})
        }
        Some(parent) => {
            json!({"type": "object", "required": [parent, "name"], "properties": {parent: {"$comment": "a provider reference"}, "name": {"type": "string"}}})
        }
    };
    json!({
        "description": format!("A {}: its id, its natural key, or a whole new record with its type (created first).", target.singular()),
        "x-reference": target.as_str(),
        "oneOf": [{"type": "string", "description": "id"}, key, {"type": "object", "description": "a new record", "required": ["type"]}]
    })
}

fn field_schema(ty: FieldType) -> Value {
    match ty {
        FieldType::Text | FieldType::Description => json!({"type": "string"}),
        FieldType::Template => json!({"type": "string", "x-template": true}),
        FieldType::UrlTemplate => {
            json!({"type": "string", "x-template": true, "format": "uri-template"})
        }
        FieldType::Enum(values) => json!({"type": "string", "enum": values}),
        FieldType::Separator => json!({"type": "string", "maxLength": 1}),
        FieldType::KeyValues => key_values_schema(),
        FieldType::Object => json!({"type": "object"}),
        FieldType::Names => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::Reference(target) => reference_schema(target),
        FieldType::References(target) => json!({
            "type": "array",
            "x-reference": target.as_str(),
            "items": {"type": "string", "description": "a scope name of the client's provider, or a scope id"}
        }),
        FieldType::RefreshRequest => {
            let mut props = Map::new();
            for f in REFRESH_REQUEST_FIELDS {
                let mut s = field_schema(f.ty);
                if let (Some(o), Some(d)) = (s.as_object_mut(), f.default) {
                    o.insert("default".into(), json!(d));
                }
                if let Some(o) = s.as_object_mut() {
                    o.insert("description".into(), json!(f.description));
                }
                props.insert(f.name.into(), s);
            }
            json!({"type": "object", "required": ["url"], "additionalProperties": false, "properties": props})
        }
        FieldType::Secret => {
            json!({"type": ["string", "null"], "writeOnly": true, "x-secret": true})
        }
        FieldType::Timestamp => json!({"type": ["string", "null"], "format": "date-time"}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::HostParameters => json!({
            "type": "array",
            "maxItems": 10,
            "items": {"type": "object", "required": ["key"], "additionalProperties": false, "properties": {
                "key": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "pattern": {"type": "string", "default": crate::template::url::DEFAULT_HOST_PATTERN}
            }}
        }),
    }
}

/// The JSON Schema (draft 2020-12) of a kind: every field with its type, enum,
/// default, which types have it, which require it, and which are secret or read-only.
pub fn kind_schema(kind: Kind) -> Value {
    let mut props = Map::new();
    let types: Vec<&str> = kind.types().iter().map(|t| t.as_str()).collect();
    props.insert("id".into(), json!({"type": "string", "readOnly": true}));
    props.insert(
        "type".into(),
        json!({"type": "string", "enum": types, "description": kind.types().iter().map(|t| format!("{}: {}", t.as_str(), t.label())).collect::<Vec<_>>().join("; ")}),
    );
    props.insert("label".into(), json!({"type": "string", "readOnly": true}));
    for field in kind.fields() {
        let mut schema = field_schema(field.ty);
        if let Some(o) = schema.as_object_mut() {
            o.insert("description".into(), json!(field.description));
            if let Some(d) = field.default {
                o.insert("default".into(), json!(d));
            }
            if field.read_only {
                o.insert("readOnly".into(), json!(true));
            }
            let having: Vec<&str> = kind.types().iter().filter(|t| field.applies_to(**t)).map(|t| t.as_str()).collect();
            if having.len() != types.len() {
                o.insert("x-types".into(), json!(having));
            }
        }
        props.insert(field.name.into(), schema);
    }
    props.insert("created_at".into(), json!({"type": "string", "format": "date-time", "readOnly": true}));
    props.insert("updated_at".into(), json!({"type": "string", "format": "date-time", "readOnly": true}));
    if kind.has_origin() {
        props.insert("origin".into(), json!({"type": "string", "enum": crate::Origin::NAMES, "readOnly": true}));
    }
    let secret_fields: Vec<&str> = kind.fields().iter().filter(|f| f.is_secret()).map(|f| f.name).collect();
    let secret_props: Map<String, Value> =
        secret_fields.iter().map(|f| ((*f).to_owned(), json!({"type": "boolean"}))).collect();
    props.insert(
        "secrets".into(),
        json!({"type": "object", "readOnly": true, "description": "Which secret fields are set; values are never shown.", "properties": secret_props}),
    );
    let always: Vec<&str> = kind
        .fields()
        .iter()
        .filter(|f| !f.read_only && kind.types().iter().all(|t| f.is_required_for(*t)))
        .map(|f| f.name)
        .collect();
    let mut required: Vec<&str> = if kind.has_single_type() { Vec::new() } else { vec!["type"] };
    required.extend(always.iter().copied());
    let per_type: Vec<Value> = kind
        .types()
        .iter()
        .filter_map(|t| {
            let req: Vec<&str> = kind
                .fields()
                .iter()
                .filter(|f| !f.read_only && f.is_required_for(*t) && !always.contains(&f.name))
                .map(|f| f.name)
                .collect();
            (!req.is_empty() && !kind.has_single_type())
                .then(|| json!({"if": {"properties": {"type": {"const": t.as_str()}}}, "then": {"required": req}}))
        })
        .collect();
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("grantry:{}", kind.as_str()),
        "title": kind.title(),
        "type": "object",
        "properties": props,
        "required": required,
        "x-secret-fields": secret_fields,
        "x-natural-key": match kind.key_parent() { None => json!(["namespace", "name"]), Some(p) => json!([p, "name"]) },
    });
    if !per_type.is_empty() {
        if let Some(o) = schema.as_object_mut() {
            o.insert("allOf".into(), Value::Array(per_type));
        }
    }
    schema
}
