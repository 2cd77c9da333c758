//! Records as the API shows them (docs/concepts.md §1.1): labels, reference
//! summaries, the record view and the export form.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::*;

/// A record as the API answers it and the UI shows it: every field of its
/// type in table order (references as `{id, natural key}`), and for secret
/// fields only whether they are set. It serialises to the API's JSON.
#[derive(Clone, Debug)]
pub struct RecordView {
    pub id: Id,
    pub kind: Kind,
    pub rtype: RecordType,
    pub label: String,
    pub fields: Vec<(&'static str, Value)>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Shareable kinds only.
    pub origin: Option<Origin>,
    pub secrets: Vec<(&'static str, bool)>,
}

impl RecordView {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    /// A text field, or `""`.
    pub fn text(&self, name: &str) -> &str {
        self.field(name).and_then(Value::as_str).unwrap_or("")
    }
    /// The id a reference field points at.
    pub fn reference(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|r| r.get("id")).and_then(Value::as_str)
    }
    /// An authorization's status.
    pub fn status(&self) -> Option<Status> {
        (self.kind == Kind::Authorization).then(|| Status::parse(self.text("status")).unwrap_or(Status::Unauthorized))
    }
    /// What the view shows besides its label and secrets, in the order of its
    /// JSON: id, type, the fields, the times and the origin.
    pub fn entries(&self) -> Vec<(&'static str, Value)> {
        let mut out = vec![("id", json!(self.id.as_str())), ("type", json!(self.rtype.as_str()))];
        out.extend(self.fields.iter().cloned());
        out.push(("created_at", json!(timestamp(self.created_at))));
        out.push(("updated_at", json!(timestamp(self.updated_at))));
        if let Some(origin) = self.origin {
            out.push(("origin", json!(origin.as_str())));
        }
        out
    }
    /// The view as a JSON value (forms fill in from it).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for RecordView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut entries = self.entries().into_iter();
        // id and type, then the label, then the rest.
        for (name, value) in entries.by_ref().take(2) {
            map.serialize_entry(name, &value)?;
        }
        map.serialize_entry("label", &self.label)?;
        for (name, value) in entries {
            map.serialize_entry(name, &value)?;
        }
        let secrets: Map<String, Value> = self.secrets.iter().map(|(n, set)| ((*n).to_owned(), json!(set))).collect();
        map.serialize_entry("secrets", &secrets)?;
        map.end()
    }
}

/// The label shown in lists and pickers (docs/concepts.md §1.1).
pub fn label(record: &Record, ctx: &Context) -> String {
    match record.kind {
        Kind::Provider => format!("{} | {}", record.namespace, record.name),
        Kind::Scope | Kind::Client => match record.key_parent().and_then(|p| ctx.get(p)) {
            Some(provider) => format!("{} | {}", label(provider, ctx), record.name),
            None => record.name.clone(),
        },
        Kind::Authorization | Kind::Connection if record.namespace.is_empty() => record.name.clone(),
        Kind::Authorization | Kind::Connection => format!("{} | {}", record.namespace, record.name),
    }
}

/// A reference as shown: `{"id", natural key fields}`, or without the id in exports.
pub(super) fn reference_view(record: &Record, ctx: &Context, with_id: bool) -> Value {
    let mut out = Map::new();
    if with_id {
        out.insert("id".into(), json!(record.id.as_str()));
    }
    match record.kind.key_parent() {
        None => {
            out.insert("namespace".into(), json!(record.namespace));
        }
        Some(parent_field) => {
            let parent = record.key_parent().and_then(|p| ctx.get(p));
            out.insert(parent_field.into(), parent.map(|p| reference_view(p, ctx, with_id)).unwrap_or(Value::Null));
        }
    }
    out.insert("name".into(), json!(record.name));
    Value::Object(out)
}

pub(super) fn refs_of<'a>(record: &'a Record, field: &str, ctx: &'a Context) -> impl Iterator<Item = &'a Record> + 'a {
    record.refs.get(field).into_iter().flatten().filter_map(move |id| ctx.get(id))
}

/// A record as the API shows it: every non-secret field and which secrets are set.
pub fn view(record: &Record, ctx: &Context) -> RecordView {
    let mut fields = Vec::new();
    let mut secrets = Vec::new();
    for field in record.kind.fields_of(record.rtype) {
        let value = match field.ty {
            FieldType::Secret => {
                secrets.push((field.name, record.secrets.contains_key(field.name)));
                continue;
            }
            FieldType::Reference(_) => {
                refs_of(record, field.name, ctx).next().map(|r| reference_view(r, ctx, true)).unwrap_or(Value::Null)
            }
            FieldType::References(_) => {
                Value::Array(refs_of(record, field.name, ctx).map(|r| reference_view(r, ctx, true)).collect())
            }
            _ if field.is_column() => json!(record.text(field.name)),
            _ => record.data.get(field.name).cloned().unwrap_or(Value::Null),
        };
        fields.push((field.name, value));
    }
    RecordView {
        id: record.id.clone(),
        kind: record.kind,
        rtype: record.rtype,
        label: label(record, ctx),
        fields,
        created_at: record.created_at,
        updated_at: record.updated_at,
        origin: record.kind.has_origin().then_some(record.origin),
        secrets,
    }
}

/// A record as export gives it: natural-key references, no ids, no secrets,
/// nothing Grantry sets by itself, so that importing it recreates the record.
pub fn export_view(record: &Record, ctx: &Context) -> Value {
    let mut out = Map::new();
    if !record.kind.has_single_type() {
        out.insert("type".into(), json!(record.rtype.as_str()));
    }
    for field in record.kind.fields_of(record.rtype) {
        if field.read_only || field.is_secret() {
            continue;
        }
        let value = match field.ty {
            FieldType::Reference(_) => match refs_of(record, field.name, ctx).next() {
                Some(r) => reference_view(r, ctx, false),
                None => continue,
            },
            // Scopes are given as names, resolved against the client's provider on import.
            FieldType::References(_) => Value::Array(refs_of(record, field.name, ctx).map(|r| json!(r.name)).collect()),
            _ if field.is_column() => json!(record.text(field.name)),
            _ => match record.data.get(field.name) {
                Some(v) => v.clone(),
                None => continue,
            },
        };
        out.insert(field.name.into(), value);
    }
    Value::Object(out)
}
