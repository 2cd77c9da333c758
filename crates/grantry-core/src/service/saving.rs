//! Creating and changing records (docs/concepts.md §1, §2.3): input parsed
//! by the field table, references resolved, secrets sealed, derived fields set,
//! the rules checked, one write.

use std::collections::BTreeMap;

use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use super::*;

impl Records {
    pub(super) fn create_record<'a>(
        &'a self,
        kind: Kind,
        body: &'a Map<String, Value>,
        saving: &'a Saving,
    ) -> BoxFuture<'a, Result<Record, Error>> {
        Box::pin(async move {
            let rtype = input::record_type(kind, body)?;
            let input = input::parse(kind, rtype, body, &saving.budget).map_err(Error::Validation)?;
            let (refs, ctx) = self.resolve_refs(kind, rtype, &input, None, saving).await.map_err(Error::Validation)?;
            let now = self.clock.now();
            let mut record = Record {
                id: Id::generate(),
                kind,
                rtype: rtype.to_owned(),
                namespace: String::new(),
                name: String::new(),
                data: Map::new(),
                refs,
                secrets: BTreeMap::new(),
                origin: Origin::Default,
                created_at: now,
                updated_at: now,
            };
            for field in kind.fields_of(rtype) {
                if let Some(v) = input
                    .values
                    .get(field.name)
                    .filter(|v| !v.is_null())
                    .cloned()
                    .or_else(|| input::default_value(field))
                {
                    set_value(&mut record, field.name, v);
                }
            }
            self.apply_secrets(&mut record, &input)?;
            self.derive(&mut record, &ctx);
            validate(&record, &ctx).into_result()?;
            if !saving.role.may(Action::Redirect) && redirects_on_create(&record, &ctx) {
                return Err(access::forbidden(saving.role, Action::Redirect));
            }
            let mut batch = vec![record.clone()];
            if rtype == RecordType::Provider(ProviderType::OAuth2) {
                batch.push(template_scope(&record));
            }
            self.store.insert(&batch).await.map_err(|e| self.write_error(e, &record, &ctx))?;
            Ok(record)
        })
    }

    pub(super) async fn patch_record(
        &self,
        existing: Record,
        body: &Map<String, Value>,
        saving: &Saving,
    ) -> Result<(Record, Saved), Error> {
        let kind = existing.kind;
        let rtype = existing.rtype;
        if let Some(t) = body.get("type") {
            if t.as_str().and_then(|t| kind.parse_type(t.trim())) != Some(rtype) && !kind.has_single_type() {
                return Err(Error::field(
                    "type",
                    format!("cannot be changed (this record is {rtype}); create a new record instead"),
                ));
            }
        }
        let input = input::parse(kind, rtype, body, &saving.budget).map_err(Error::Validation)?;
        // A new record given inline where a destination is named is a redirect
        // by itself: refused before it is created.
        let inline_destination =
            destination_fields(kind).iter().any(|f| input.refs.get(f).is_some_and(|v| v.get("type").is_some()));
        if inline_destination && !saving.role.may(Action::Redirect) {
            return Err(access::forbidden(saving.role, Action::Redirect));
        }
        let (refs, ctx) =
            self.resolve_refs(kind, rtype, &input, Some(&existing), saving).await.map_err(Error::Validation)?;
        let mut record = existing.clone();
        record.refs = refs;
        for (name, value) in &input.values {
            match value {
                Value::Null if name == "namespace" || name == "name" => set_value(&mut record, name, json!("")),
                Value::Null => {
                    record.data.remove(name);
                }
                v => set_value(&mut record, name, v.clone()),
            }
        }
        let secrets_changed = self.apply_secrets(&mut record, &input)?;
        self.derive(&mut record, &ctx);
        let mut errors = validate(&record, &ctx);
        if is_template_scope(&existing) && record.name != existing.name {
            errors.add("name", format!("the {TEMPLATE_SCOPE} scope of a provider cannot be renamed"));
        }
        errors.into_result()?;
        if !saving.role.may(Action::Redirect) && redirects(&existing, &record) {
            return Err(access::forbidden(saving.role, Action::Redirect));
        }
        let unchanged = !secrets_changed
            && record.namespace == existing.namespace
            && record.name == existing.name
            && record.data == existing.data
            && record.refs == existing.refs;
        if unchanged {
            return Ok((existing, Saved::Unchanged));
        }
        record.updated_at = self.clock.now();
        self.store.update(&record).await.map_err(|e| self.write_error(e, &record, &ctx))?;
        Ok((record, Saved::Updated))
    }

    pub(super) async fn import_one(&self, kind: Kind, item: &Value, saving: &Saving) -> Result<Saved, Error> {
        let body = body_object(item)?;
        let rtype = input::record_type(kind, body)?;
        let existing = match self.natural_key(kind, body, "").await {
            Ok(Some(key)) => self.store.find_by_key(kind, &key).await?,
            Ok(None) => None,
            Err(errors) => return Err(Error::Validation(errors)),
        };
        match existing {
            Some(existing) if existing.rtype != rtype => Err(Error::field(
                "type",
                format!(
                    "a {} with this natural key exists as {}; types cannot be changed",
                    kind.singular(),
                    existing.rtype
                ),
            )),
            Some(existing) => Ok(self.patch_record(existing, body, saving).await?.1),
            None => self.create_record(kind, body, saving).await.map(|_| Saved::Created),
        }
    }

    /// Seals the secrets the input sets and drops the ones it clears. Says
    /// whether any secret was given or cleared: a given secret always counts as
    /// a change, even when it equals the stored one, so that the answer is no
    /// oracle for guessing a secret (docs/concepts.md §6).
    pub(super) fn apply_secrets(&self, record: &mut Record, input: &Input) -> Result<bool, Error> {
        let mut changed = false;
        for (field, value) in &input.secrets {
            let context = seal_context(&record.id, field);
            match value {
                None => changed |= record.secrets.remove(*field).is_some(),
                Some(secret) => {
                    record.secrets.insert((*field).to_owned(), self.sealer.seal(secret.expose_secret(), &context)?);
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    /// Fields that follow from others: a client's namespace, an authorization's status.
    pub(super) fn derive(&self, record: &mut Record, ctx: &Context) {
        match record.kind {
            Kind::Client if record.namespace.is_empty() => {
                if let Some(provider) = record.reference("provider").and_then(|id| ctx.get(id)) {
                    record.namespace = provider.namespace.clone();
                }
            }
            Kind::Authorization => {
                // Typed-in credentials are authorized as soon as they are all set;
                // the other types get their status from their flows.
                let typed_in = match record.authorization_type() {
                    Some(AuthorizationType::Basic) => Some(&["username", "password"][..]),
                    Some(AuthorizationType::ApiKey) => Some(&["key_value"][..]),
                    Some(AuthorizationType::OAuth2 | AuthorizationType::OAuth1 | AuthorizationType::Generic) | None => {
                        None
                    }
                };
                let status = match typed_in {
                    Some(fields) => credential_status(record, fields),
                    None => record.status(),
                };
                let authorized = status == Status::Authorized;
                if authorized && !record.data.contains_key("authorized_at") {
                    record.data.insert("authorized_at".into(), json!(timestamp(self.clock.now())));
                }
                if !authorized && typed_in.is_some() {
                    record.data.remove("authorized_at");
                }
                record.data.insert("status".into(), json!(status.as_str()));
                record.data.insert("authorized".into(), json!(authorized));
            }
            _ => {}
        }
    }

    pub(super) fn write_error(&self, e: StoreError, record: &Record, ctx: &Context) -> Error {
        match e {
            StoreError::Duplicate(kind) => {
                let scope = match record.key_parent().and_then(|p| ctx.get(p)) {
                    Some(parent) => format!("for provider {}", label(parent, ctx)),
                    None if kind == Kind::Authorization && record.namespace.is_empty() => "without a namespace".into(),
                    None => format!("in namespace {}", record.namespace),
                };
                Error::field("name", format!("is already taken {scope}"))
            }
            StoreError::MissingReference => Error::Conflict {
                message: "a referenced record was deleted meanwhile; try again".into(),
                referrers: Vec::new(),
            },
            other => other.into(),
        }
    }
}

pub(super) fn credential_status(record: &Record, fields: &[&str]) -> Status {
    if fields.iter().all(|f| record.secrets.contains_key(*f)) {
        Status::Authorized
    } else {
        Status::Unauthorized
    }
}

pub(super) fn set_value(record: &mut Record, field: &str, value: Value) {
    match field {
        "namespace" => record.namespace = value.as_str().unwrap_or_default().to_owned(),
        "name" => record.name = value.as_str().unwrap_or_default().to_owned(),
        _ => {
            record.data.insert(field.to_owned(), value);
        }
    }
}

pub(super) fn is_template_scope(record: &Record) -> bool {
    record.kind == Kind::Scope && record.name == TEMPLATE_SCOPE
}

pub(super) fn template_scope(provider: &Record) -> Record {
    let mut data = Map::new();
    data.insert(
        "description".into(),
        json!("Any scope, passed through the authorization's template parameter `scope`."),
    );
    Record {
        id: Id::generate(),
        kind: Kind::Scope,
        rtype: RecordType::Scope,
        namespace: String::new(),
        name: TEMPLATE_SCOPE.into(),
        data,
        refs: BTreeMap::from([("provider".to_owned(), vec![provider.id.clone()])]),
        secrets: BTreeMap::new(),
        origin: Origin::Default,
        created_at: provider.created_at,
        updated_at: provider.updated_at,
    }
}
