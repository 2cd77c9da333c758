//! The record service: every operation of the generic menu (docs/concepts.md §2) on every
//! kind, with the rules of docs/concepts.md §1. Handlers call this; this calls the Store.

mod references;
mod rules;
mod saving;
mod views;

use rules::*;
use saving::*;
pub use views::{export_view, label, view, RecordView};

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};

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
#[derive(Debug, serde::Serialize)]
pub struct Page<T = RecordView> {
    pub items: Vec<T>,
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
    pub async fn create(&self, caller: &Caller, kind: Kind, body: &Value) -> Result<RecordView, Error> {
        caller.check(Action::Write)?;
        let record = self.create_record(kind, body_object(body)?, &Saving::new(caller.role)).await?;
        self.view(record).await
    }

    pub async fn get(&self, caller: &Caller, kind: Kind, id: &Id) -> Result<RecordView, Error> {
        caller.check(Action::Read(kind))?;
        self.view_of(kind, id).await
    }

    /// A record as the API shows it, for the domain's own answers (after a flow step).
    pub(crate) async fn view_of(&self, kind: Kind, id: &Id) -> Result<RecordView, Error> {
        let record = self.fetch(kind, id).await?;
        self.view(record).await
    }

    /// Changes a record.
    pub async fn patch(&self, caller: &Caller, kind: Kind, id: &Id, body: &Value) -> Result<RecordView, Error> {
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

    // ---- for the flows: every read and write of a record goes through here ----

    pub(crate) async fn stored(&self, kind: Kind, id: &Id) -> Result<Option<Record>, Error> {
        Ok(self.store.get(kind, id).await?)
    }

    pub(crate) async fn stored_many(&self, ids: &[Id]) -> Result<Vec<Record>, Error> {
        Ok(self.store.get_many(ids).await?)
    }

    pub(crate) async fn stored_all(&self, kind: Kind) -> Result<Vec<Record>, Error> {
        Ok(self.store.find_all(kind, &[]).await?)
    }

    pub(crate) async fn stored_by_key(&self, kind: Kind, key: &NaturalKey) -> Result<Option<Record>, Error> {
        Ok(self.store.find_by_key(kind, key).await?)
    }

    /// Writes the fields a flow changed (tokens, status) of a stored record.
    pub(crate) async fn write(&self, record: &Record) -> Result<(), Error> {
        Ok(self.store.update(record).await?)
    }

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

    async fn view(&self, record: Record) -> Result<RecordView, Error> {
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
