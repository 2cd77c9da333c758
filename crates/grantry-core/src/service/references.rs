//! Resolving reference fields (docs/concepts.md §2.5): by id, by natural
//! key, or a new record given inline, and the scopes of an authorization by
//! name within its client's provider.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::*;

impl Records {
    /// Resolves the reference fields of an input (keeping the existing record's
    /// other references) and loads every record the rules need to look at.
    pub(super) async fn resolve_refs(
        &self,
        kind: Kind,
        rtype: RecordType,
        input: &Input,
        existing: Option<&Record>,
        saving: &Saving,
    ) -> Result<(BTreeMap<String, Vec<Id>>, Context), FieldErrors> {
        let mut refs = existing.map(|e| e.refs.clone()).unwrap_or_default();
        let mut ctx = Context::new();
        let mut errors = FieldErrors::default();
        for field in kind.fields_of(rtype) {
            let FieldType::Reference(target) = field.ty else {
                continue;
            };
            match input.refs.get(field.name) {
                None => {}
                Some(Value::Null) => {
                    refs.remove(field.name);
                }
                Some(value) => match self.resolve_one(target, value, field.name, Some(saving)).await {
                    Ok(record) => {
                        refs.insert(field.name.to_owned(), vec![record.id.clone()]);
                        ctx.insert(record.id.clone(), record);
                    }
                    Err(e) => errors.merge_under("", e),
                },
            }
        }
        let internal = |e: StoreError| {
            let mut errors = FieldErrors::default();
            errors.add("id", format!("could not be checked: {e}"));
            errors
        };
        // Load what is referenced but not yet at hand, then the key parents of those.
        for _ in 0..2 {
            let mut missing: Vec<Id> = refs.values().flatten().filter(|id| !ctx.contains_key(*id)).cloned().collect();
            missing.extend(ctx.values().filter_map(Record::key_parent).filter(|id| !ctx.contains_key(*id)).cloned());
            if missing.is_empty() {
                break;
            }
            for record in self.store.get_many(&missing).await.map_err(internal)? {
                ctx.insert(record.id.clone(), record);
            }
        }
        for field in kind.fields_of(rtype) {
            let FieldType::References(target) = field.ty else {
                continue;
            };
            let Some(given) = input.refs.get(field.name) else {
                continue;
            };
            let items = match given {
                Value::Null => Vec::new(),
                Value::Array(items) => items.clone(),
                other => {
                    errors.add(
                        field.name,
                        format!("must be a list of {} names or ids, not {}", target.singular(), json_type(other)),
                    );
                    continue;
                }
            };
            let provider = refs
                .get("client")
                .and_then(|c| c.first())
                .and_then(|c| ctx.get(c))
                .and_then(Record::key_parent)
                .cloned();
            let mut ids: Vec<Id> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("{}[{i}]", field.name);
                let Some(provider) = &provider else {
                    errors.add(path, "cannot be resolved before a client is chosen");
                    continue;
                };
                match self.resolve_scope(provider, item, &path).await {
                    Ok(scope) => {
                        if !ids.contains(&scope.id) {
                            ids.push(scope.id.clone());
                        }
                        ctx.insert(scope.id.clone(), scope);
                    }
                    Err(e) => errors.merge_under("", e),
                }
            }
            refs.insert(field.name.to_owned(), ids);
        }
        // Scopes kept from the existing record are needed to check they still fit the client.
        let missing: Vec<Id> = refs.values().flatten().filter(|id| !ctx.contains_key(*id)).cloned().collect();
        if !missing.is_empty() {
            for record in self.store.get_many(&missing).await.map_err(internal)? {
                ctx.insert(record.id.clone(), record);
            }
        }
        refs.retain(|_, ids| !ids.is_empty());
        if errors.is_empty() {
            Ok((refs, ctx))
        } else {
            Err(errors)
        }
    }

    /// A reference: an id, `{"id": ...}`, a natural key object, or (when
    /// `create_with` gives the request that saves) a whole new record with
    /// its `"type"`, created now.
    pub(super) fn resolve_one<'a>(
        &'a self,
        kind: Kind,
        value: &'a Value,
        path: &'a str,
        create_with: Option<&'a Saving>,
    ) -> BoxFuture<'a, Result<Record, FieldErrors>> {
        Box::pin(async move {
            let fail = |message: String| {
                let mut errors = FieldErrors::default();
                errors.add(path, message);
                errors
            };
            let by_id = |id: &str| {
                let id = Id::from_string(id.trim());
                async move {
                    match self.store.get(kind, &id).await {
                        Ok(Some(r)) => Ok(r),
                        Ok(None) => Err(fail(format!("no {} has id `{id}`", kind.singular()))),
                        Err(e) => Err(fail(format!("could not be looked up: {e}"))),
                    }
                }
            };
            match value {
                Value::String(id) => by_id(id).await,
                Value::Object(o) if o.contains_key("type") && !kind.has_single_type() => {
                    let Some(saving) = create_with else {
                        return Err(fail("must name an existing record here, not a new one".into()));
                    };
                    match self.create_record(kind, o, saving).await {
                        Ok(record) => Ok(record),
                        Err(Error::Validation(inner)) => {
                            let mut errors = FieldErrors::default();
                            errors.merge_under(path, inner);
                            Err(errors)
                        }
                        Err(other) => Err(fail(other.to_string())),
                    }
                }
                Value::Object(o) if o.get("id").is_some_and(Value::is_string) => {
                    by_id(o.get("id").and_then(Value::as_str).unwrap_or_default()).await
                }
                Value::Object(o) => {
                    let key = self.natural_key(kind, o, path).await?;
                    let Some(key) = key else {
                        return Err(fail("must name an existing record here, not a new one".into()));
                    };
                    match self.store.find_by_key(kind, &key).await {
                        Ok(Some(r)) => Ok(r),
                        Ok(None) => Err(fail(format!("no {} {}", kind.singular(), self.describe_key(&key).await))),
                        Err(e) => Err(fail(format!("could not be looked up: {e}"))),
                    }
                }
                other => Err(fail(format!(
                    "must be an id, a natural key object or a new record with its type, not {}",
                    json_type(other)
                ))),
            }
        })
    }

    /// The natural key an object names; `None` when its parent is itself a new
    /// record (so the object cannot exist yet).
    pub(super) async fn natural_key(
        &self,
        kind: Kind,
        o: &Map<String, Value>,
        path: &str,
    ) -> Result<Option<NaturalKey>, FieldErrors> {
        let at = |field: &str| {
            if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            }
        };
        let text = |field: &str| -> Result<String, FieldErrors> {
            match o.get(field) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.trim().to_owned()),
                Some(other) => {
                    let mut errors = FieldErrors::default();
                    errors.add(at(field), format!("must be a string, not {}", json_type(other)));
                    Err(errors)
                }
            }
        };
        let name = text("name")?;
        if name.is_empty() {
            let mut errors = FieldErrors::default();
            errors.add(at("name"), "must not be blank");
            return Err(errors);
        }
        match kind.key_parent() {
            None => Ok(Some(NaturalKey::Namespaced { namespace: text("namespace")?, name })),
            Some(parent_field) => {
                let parent_value = o.get(parent_field).cloned().unwrap_or(Value::Null);
                if parent_value.get("type").is_some() {
                    return Ok(None);
                }
                if parent_value.is_null() {
                    let mut errors = FieldErrors::default();
                    errors.add(at(parent_field), "is required");
                    return Err(errors);
                }
                let parent = self.resolve_one(Kind::Provider, &parent_value, &at(parent_field), None).await?;
                Ok(Some(NaturalKey::Child { parent: parent.id, name }))
            }
        }
    }

    pub(super) async fn describe_key(&self, key: &NaturalKey) -> String {
        match key {
            NaturalKey::Namespaced { namespace, name } if namespace.is_empty() => name.clone(),
            NaturalKey::Namespaced { namespace, name } => format!("{namespace} | {name}"),
            NaturalKey::Child { parent, name } => match self.store.get(Kind::Provider, parent).await {
                Ok(Some(p)) => format!("{} | {} | {name}", p.namespace, p.name),
                _ => name.clone(),
            },
        }
    }

    /// A scope of an authorization: an id or a name of the client's provider,
    /// or an object with either.
    pub(super) async fn resolve_scope(&self, provider: &Id, item: &Value, path: &str) -> Result<Record, FieldErrors> {
        let fail = |message: String| {
            let mut errors = FieldErrors::default();
            errors.add(path, message);
            errors
        };
        let text = match item {
            Value::String(s) => s.trim().to_owned(),
            Value::Object(o) => match (o.get("id").and_then(Value::as_str), o.get("name").and_then(Value::as_str)) {
                (Some(id), _) => id.trim().to_owned(),
                (None, Some(name)) => name.trim().to_owned(),
                _ => return Err(fail("must name a scope by name or id".into())),
            },
            other => return Err(fail(format!("must be a scope name or id, not {}", json_type(other)))),
        };
        let lookup = async {
            if let Some(scope) = self.store.get(Kind::Scope, &Id::from_string(text.clone())).await? {
                return Ok(Some(scope));
            }
            self.store
                .find_by_key(Kind::Scope, &NaturalKey::Child { parent: provider.clone(), name: text.clone() })
                .await
        };
        match lookup.await {
            Ok(Some(scope)) if scope.key_parent() == Some(provider) => Ok(scope),
            Ok(Some(_)) => Err(fail(format!("`{text}` is a scope of another provider than the client's"))),
            Ok(None) => {
                let provider_label =
                    self.describe_key(&NaturalKey::Child { parent: provider.clone(), name: String::new() }).await;
                let provider_label = provider_label.trim_end_matches(" | ").to_owned();
                Err(fail(format!("`{text}` is not a scope of provider {provider_label}")))
            }
            Err(e) => Err(fail(format!("could not be looked up: {e}"))),
        }
    }
}
