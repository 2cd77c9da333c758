//! The record service: every operation of the generic menu (SPEC §2) on every
//! kind, with the rules of SPEC §1. Handlers call this; this calls the Store.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use crate::access::{self, Action, Caller, Role};
use crate::filter::{Condition, ListQuery};
use crate::input::{self, json_type, Input};
use crate::ports::{seal_context, Clock, Sealer, Store, StoreError};
use crate::template::{self, HostParameter, Position, RequestBudget};

/// One request that saves records: who asks, and the time its templates may
/// take to try, over every record it saves (inline and imported ones too).
struct Saving {
    role: Role,
    budget: RequestBudget,
}

impl Saving {
    fn new(role: Role) -> Saving {
        Saving { role, budget: RequestBudget::default() }
    }
}
use crate::{
    timestamp, AuthorizationType, Error, FieldErrors, FieldType, Id, Kind, NaturalKey, Origin, Placement, ProviderType,
    Record, RecordType, Referrer, RefreshStrategy, Status, TEMPLATE_SCOPE,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// Which records a bulk delete or an export takes.
#[derive(Debug, Clone)]
pub enum Selection {
    Ids(Vec<Id>),
    Filter(Vec<Condition>),
}

/// What an import did, record by record.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: Vec<(usize, Error)>,
}

enum Saved {
    Created,
    Updated,
    Unchanged,
}

/// Records related to the ones at hand (references and their key parents), by id.
type Context = HashMap<Id, Record>;

pub struct Records {
    store: Arc<dyn Store>,
    sealer: Arc<dyn Sealer>,
    clock: Arc<dyn Clock>,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Internal(e.to_string())
    }
}

fn body_object(body: &Value) -> Result<&Map<String, Value>, Error> {
    body.as_object()
        .ok_or_else(|| Error::BadRequest(format!("the body must be a JSON object, not {}", json_type(body))))
}

impl Records {
    pub fn new(store: Arc<dyn Store>, sealer: Arc<dyn Sealer>, clock: Arc<dyn Clock>) -> Self {
        Records { store, sealer, clock }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    // ---- the operations ---------------------------------------------------

    /// Creates a record (and the new records it carries inline).
    pub async fn create(&self, caller: &Caller, kind: Kind, body: &Value) -> Result<Value, Error> {
        caller.check(Action::Write)?;
        let record = self.create_record(kind, body_object(body)?, &Saving::new(caller.role)).await?;
        self.view(record).await
    }

    pub async fn get(&self, caller: &Caller, kind: Kind, id: &Id) -> Result<Value, Error> {
        caller.check(Action::Read(kind))?;
        self.view_of(kind, id).await
    }

    /// A record as the API shows it, for the domain's own answers (after a flow step).
    pub(crate) async fn view_of(&self, kind: Kind, id: &Id) -> Result<Value, Error> {
        let record = self.fetch(kind, id).await?;
        self.view(record).await
    }

    /// Changes a record.
    pub async fn patch(&self, caller: &Caller, kind: Kind, id: &Id, body: &Value) -> Result<Value, Error> {
        caller.check(Action::Write)?;
        let existing = self.fetch(kind, id).await?;
        let (record, _) = self.patch_record(existing, body_object(body)?, &Saving::new(caller.role)).await?;
        self.view(record).await
    }

    pub async fn list(&self, caller: &Caller, kind: Kind, query: &ListQuery) -> Result<Page, Error> {
        caller.check(Action::Read(kind))?;
        let (records, total) = self.store.list(kind, query).await?;
        let ctx = self.context(&records).await?;
        let items = records.iter().map(|r| view(r, &ctx)).collect();
        Ok(Page { items, total, page: query.page, per_page: query.per_page })
    }

    pub async fn delete(&self, caller: &Caller, kind: Kind, id: &Id) -> Result<(), Error> {
        caller.check(Action::Write)?;
        let record = self.fetch(kind, id).await?;
        if is_template_scope(&record) {
            let ctx = self.context(std::slice::from_ref(&record)).await?;
            return Err(Error::Conflict {
                message: format!("scope {} is part of its provider and is removed only with it", label(&record, &ctx)),
                referrers: Vec::new(),
            });
        }
        self.delete_records(vec![record]).await.map(|_| ())
    }

    /// Deletes the selected records; the `{{scope}}` scopes of providers that
    /// stay are skipped, as they leave only with their provider.
    pub async fn delete_many(&self, caller: &Caller, kind: Kind, selection: &Selection) -> Result<u64, Error> {
        caller.check(Action::Write)?;
        let records: Vec<Record> =
            self.select(kind, selection).await?.into_iter().filter(|r| !is_template_scope(r)).collect();
        self.delete_records(records).await
    }

    pub async fn export(&self, caller: &Caller, kind: Kind, selection: &Selection) -> Result<Vec<Value>, Error> {
        caller.check(Action::Export)?;
        let records = self.select(kind, selection).await?;
        let ctx = self.context(&records).await?;
        Ok(records.iter().map(|r| export_view(r, &ctx)).collect())
    }

    pub async fn import(&self, caller: &Caller, kind: Kind, body: &Value) -> Result<ImportReport, Error> {
        caller.check(Action::Write)?;
        let Value::Array(items) = body else {
            return Err(Error::BadRequest(format!(
                "an import is a JSON list of records (as export gives), not {}",
                json_type(body)
            )));
        };
        let mut report = ImportReport::default();
        // One budget for trying the templates of every record of the import.
        let saving = Saving::new(caller.role);
        for (index, item) in items.iter().enumerate() {
            match self.import_one(kind, item, &saving).await {
                Ok(Saved::Created) => report.created += 1,
                Ok(Saved::Updated) => report.updated += 1,
                Ok(Saved::Unchanged) => report.unchanged += 1,
                Err(e) => report.failed.push((index, e)),
            }
        }
        Ok(report)
    }

    // ---- creating and changing ---------------------------------------------

    fn create_record<'a>(
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
                origin: Origin::Default.as_str().to_owned(),
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

    async fn patch_record(
        &self,
        existing: Record,
        body: &Map<String, Value>,
        saving: &Saving,
    ) -> Result<(Record, Saved), Error> {
        let kind = existing.kind;
        let rtype = existing.rtype;
        if let Some(t) = body.get("type") {
            if t.as_str().map(str::trim) != Some(rtype.as_str()) && !kind.has_single_type() {
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

    async fn import_one(&self, kind: Kind, item: &Value, saving: &Saving) -> Result<Saved, Error> {
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
    /// oracle for guessing a secret (issue 8, "Hygiene").
    fn apply_secrets(&self, record: &mut Record, input: &Input) -> Result<bool, Error> {
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
    fn derive(&self, record: &mut Record, ctx: &Context) {
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

    fn write_error(&self, e: StoreError, record: &Record, ctx: &Context) -> Error {
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

    // ---- references -------------------------------------------------------

    /// Resolves the reference fields of an input (keeping the existing record's
    /// other references) and loads every record the rules need to look at.
    async fn resolve_refs(
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
    fn resolve_one<'a>(
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
    async fn natural_key(
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

    async fn describe_key(&self, key: &NaturalKey) -> String {
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
    async fn resolve_scope(&self, provider: &Id, item: &Value, path: &str) -> Result<Record, FieldErrors> {
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

    // ---- reading ----------------------------------------------------------

    async fn fetch(&self, kind: Kind, id: &Id) -> Result<Record, Error> {
        self.store.get(kind, id).await?.ok_or_else(|| Error::NotFound(format!("no {} has id `{id}`", kind.singular())))
    }

    pub async fn select_records(&self, kind: Kind, selection: &Selection) -> Result<Vec<Record>, Error> {
        self.select(kind, selection).await
    }

    async fn select(&self, kind: Kind, selection: &Selection) -> Result<Vec<Record>, Error> {
        Ok(match selection {
            Selection::Ids(ids) => {
                let mut found: Vec<Record> =
                    self.store.get_many(ids).await?.into_iter().filter(|r| r.kind == kind).collect();
                found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
                found
            }
            Selection::Filter(conditions) => self.store.find_all(kind, conditions).await?,
        })
    }

    /// Loads the records referenced by `records`, and their key parents.
    async fn context(&self, records: &[Record]) -> Result<Context, Error> {
        let mut ctx = Context::new();
        let mut wanted: Vec<Id> = records.iter().flat_map(|r| r.refs.values().flatten().cloned()).collect();
        for _ in 0..2 {
            wanted.retain(|id| !ctx.contains_key(id));
            wanted.sort();
            wanted.dedup();
            if wanted.is_empty() {
                break;
            }
            let found = self.store.get_many(&wanted).await?;
            wanted = found.iter().filter_map(Record::key_parent).cloned().collect();
            for record in found {
                ctx.insert(record.id.clone(), record);
            }
        }
        Ok(ctx)
    }

    async fn view(&self, record: Record) -> Result<Value, Error> {
        let ctx = self.context(std::slice::from_ref(&record)).await?;
        Ok(view(&record, &ctx))
    }

    // ---- deleting ---------------------------------------------------------

    async fn delete_records(&self, records: Vec<Record>) -> Result<u64, Error> {
        if records.is_empty() {
            return Ok(0);
        }
        let count = records.len() as u64;
        let mut ids: Vec<Id> = records.iter().map(|r| r.id.clone()).collect();
        // A provider's scopes go with it.
        let providers: Vec<Id> = records.iter().filter(|r| r.kind == Kind::Provider).map(|r| r.id.clone()).collect();
        if !providers.is_empty() {
            ids.extend(self.store.children(Kind::Scope, &providers).await?);
        }
        match self.store.delete(&ids).await {
            Ok(_) => Ok(count),
            Err(StoreError::Referenced(referrer_ids)) => Err(self.referenced_error(&records, &referrer_ids).await),
            Err(e) => Err(e.into()),
        }
    }

    async fn referenced_error(&self, deleting: &[Record], referrer_ids: &[Id]) -> Error {
        let referrers = self.store.get_many(referrer_ids).await.unwrap_or_default();
        let mut all: Vec<Record> = deleting.to_vec();
        all.extend(referrers.iter().cloned());
        let ctx = self.context(&all).await.unwrap_or_default();
        let referrers: Vec<Referrer> =
            referrers.iter().map(|r| Referrer { kind: r.kind, id: r.id.to_string(), label: label(r, &ctx) }).collect();
        let targets: Vec<String> =
            deleting.iter().take(3).map(|r| format!("{} {}", r.kind.singular(), label(r, &ctx))).collect();
        let more = if deleting.len() > 3 { format!(" and {} more", deleting.len() - 3) } else { String::new() };
        let users: Vec<String> = referrers.iter().map(|r| format!("{} {}", r.kind.singular(), r.label)).collect();
        Error::Conflict {
            message: format!(
                "cannot delete {}{more}: still used by {}; change or delete those first. Nothing was deleted.",
                targets.join(", "),
                users.join(", ")
            ),
            referrers,
        }
    }
}

fn credential_status(record: &Record, fields: &[&str]) -> Status {
    if fields.iter().all(|f| record.secrets.contains_key(*f)) {
        Status::Authorized
    } else {
        Status::Unauthorized
    }
}

fn set_value(record: &mut Record, field: &str, value: Value) {
    match field {
        "namespace" => record.namespace = value.as_str().unwrap_or_default().to_owned(),
        "name" => record.name = value.as_str().unwrap_or_default().to_owned(),
        _ => {
            record.data.insert(field.to_owned(), value);
        }
    }
}

fn is_template_scope(record: &Record) -> bool {
    record.kind == Kind::Scope && record.name == TEMPLATE_SCOPE
}

fn template_scope(provider: &Record) -> Record {
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
        origin: Origin::Default.as_str().to_owned(),
        created_at: provider.created_at,
        updated_at: provider.updated_at,
    }
}

// ---- rules ------------------------------------------------------------------

/// The fields that decide where a record's stored secrets (or those that
/// flow through it) are sent; changing one needs `Action::Redirect`.
fn destination_fields(kind: Kind) -> &'static [&'static str] {
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
fn redirects_on_create(record: &Record, ctx: &Context) -> bool {
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
fn redirects(before: &Record, after: &Record) -> bool {
    destination_fields(before.kind)
        .iter()
        .any(|f| before.refs.get(*f) != after.refs.get(*f) || before.data.get(*f) != after.data.get(*f))
}

/// The templates of a record, each with its field path and where its result goes.
fn templates_of(record: &Record) -> Vec<(String, &str, Position)> {
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

/// The fences of issue 8 on a record's templates: no secret variable where
/// it may not go, and URLs whose scheme and host are literal but for
/// declared host parameters.
fn check_templates(record: &Record, errors: &mut FieldErrors) {
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

/// The rules of SPEC §1 on a whole record, with the records it references at hand.
fn validate(record: &Record, ctx: &Context) -> FieldErrors {
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
fn refuse_host_header(record: &Record, list: &str, errors: &mut FieldErrors) {
    for (i, entry) in record.data.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
        if entry["key"].as_str().is_some_and(|k| k.eq_ignore_ascii_case("host")) {
            errors.add(format!("{list}[{i}].key"), "`Host` follows from the URL the request goes to and cannot be set");
        }
    }
}

/// Which of a connection's lists an authorization writes into, and the name it
/// sets there: `("headers", "Authorization")`, or an API key's header or parameter.
fn added_by(auth: &Record) -> (&'static str, Option<String>) {
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

// ---- views ------------------------------------------------------------------

/// The label shown in lists and pickers (SPEC §1).
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
fn reference_view(record: &Record, ctx: &Context, with_id: bool) -> Value {
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

fn refs_of<'a>(record: &'a Record, field: &str, ctx: &'a Context) -> impl Iterator<Item = &'a Record> + 'a {
    record.refs.get(field).into_iter().flatten().filter_map(move |id| ctx.get(id))
}

/// A record as the API shows it: every non-secret field and which secrets are set.
pub fn view(record: &Record, ctx: &Context) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(record.id.as_str()));
    out.insert("type".into(), json!(record.rtype.as_str()));
    out.insert("label".into(), json!(label(record, ctx)));
    let mut secrets = Map::new();
    for field in record.kind.fields_of(record.rtype) {
        let value = match field.ty {
            FieldType::Secret => {
                secrets.insert(field.name.into(), json!(record.secrets.contains_key(field.name)));
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
        out.insert(field.name.into(), value);
    }
    out.insert("created_at".into(), json!(timestamp(record.created_at)));
    out.insert("updated_at".into(), json!(timestamp(record.updated_at)));
    if record.kind.has_origin() {
        out.insert("origin".into(), json!(record.origin));
    }
    out.insert("secrets".into(), Value::Object(secrets));
    Value::Object(out)
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
