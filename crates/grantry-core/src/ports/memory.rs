//! The `Store` port in memory, for tests: plain collections behind one mutex,
//! with the observable behaviour of the SQLite engine (`grantry-store`),
//! which is the reference. Both pass `conformance`.
//!
//! Filters compare the way SQLite does: columns as text; data fields as
//! `json_extract` values (null, then numbers, then text; a boolean is 1 or 0,
//! a number never equals a text); `ne` is `IS NOT`, so it matches a missing
//! field; `contains`, `starts_with` and `ends_with` ignore ASCII case; a
//! condition on a reference holds when any referenced record satisfies it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};

use super::{whole_milliseconds, ApiToken, Notification, NotificationQuery, PendingState, Store, StoreError};
use crate::filter::{Condition, FilterValue, ListQuery, Op, Sort, Target};
use crate::{timestamp, Id, Kind, NaturalKey, Record};

#[derive(Default)]
struct Inner {
    /// In insertion order.
    records: Vec<Record>,
    tokens: Vec<ApiToken>,
    states: BTreeMap<String, PendingState>,
    notifications: Vec<Notification>,
    /// Authorization id → (holder, until).
    leases: BTreeMap<Id, (String, OffsetDateTime)>,
    meta: BTreeMap<String, String>,
}

/// A `Store` in memory. `MemoryStore::default()` is empty.
#[derive(Default)]
pub struct MemoryStore(Mutex<Inner>);

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Times as SQLite keeps them: UTC, whole milliseconds.
fn stored_time(t: OffsetDateTime) -> OffsetDateTime {
    whole_milliseconds(t.to_offset(UtcOffset::UTC))
}

/// A record as SQLite reads it back: no empty reference lists (they have no rows), times as stored.
fn stored(record: &Record) -> Record {
    let mut r = record.clone();
    r.refs.retain(|_, ids| !ids.is_empty());
    r.created_at = stored_time(r.created_at);
    r.updated_at = stored_time(r.updated_at);
    r
}

/// Whether two records of one kind share a natural key (the two unique indexes).
/// A record's natural key, as `same_key` compares it.
type Key = (Kind, Option<Id>, String, String);

fn key_of(r: &Record) -> Key {
    match r.key_parent() {
        Some(parent) => (r.kind, Some(parent.clone()), String::new(), r.name.clone()),
        None => (r.kind, None, r.namespace.clone(), r.name.clone()),
    }
}

fn same_key(a: &Record, b: &Record) -> bool {
    a.kind == b.kind
        && a.name == b.name
        && match (a.key_parent(), b.key_parent()) {
            (None, None) => a.namespace == b.namespace,
            (Some(p), Some(q)) => p == q,
            _ => false,
        }
}

fn has_key(r: &Record, key: &NaturalKey) -> bool {
    match key {
        NaturalKey::Namespaced { namespace, name } => {
            r.key_parent().is_none() && r.namespace == *namespace && r.name == *name
        }
        NaturalKey::Child { parent, name } => r.key_parent() == Some(parent) && r.name == *name,
    }
}

/// An SQL value, ordered as SQLite orders them: null, then numbers, then text.
#[derive(Clone)]
enum Val {
    Null,
    /// Scalar fields hold no numbers but booleans (1 or 0), so a float does.
    Num(f64),
    Text(String),
}

impl Val {
    /// `json_extract`: a boolean is 1 or 0; objects and arrays are their JSON text.
    fn from_json(value: Option<&Value>) -> Val {
        match value {
            None | Some(Value::Null) => Val::Null,
            Some(Value::Bool(b)) => Val::Num(f64::from(u8::from(*b))),
            Some(Value::Number(n)) => Val::Num(n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) => Val::Text(s.clone()),
            Some(other) => Val::Text(other.to_string()),
        }
    }
    fn rank(&self) -> u8 {
        match self {
            Val::Null => 0,
            Val::Num(_) => 1,
            Val::Text(_) => 2,
        }
    }
    fn compare(&self, other: &Val) -> Ordering {
        match (self, other) {
            (Val::Num(a), Val::Num(b)) => a.total_cmp(b),
            (Val::Text(a), Val::Text(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
    /// The text LIKE sees; `None` for null.
    fn like_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Num(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
            Val::Num(f) => Some(f.to_string()),
            Val::Text(s) => Some(s.clone()),
        }
    }
}

fn column_text(r: &Record, column: &str) -> Val {
    match column {
        "id" => Val::Text(r.id.as_str().to_owned()),
        "type" => Val::Text(r.rtype.as_str().to_owned()),
        "namespace" => Val::Text(r.namespace.clone()),
        "name" => Val::Text(r.name.clone()),
        "origin" => Val::Text(r.origin.as_str().to_owned()),
        "created_at" => Val::Text(timestamp(r.created_at)),
        "updated_at" => Val::Text(timestamp(r.updated_at)),
        _ => Val::Null,
    }
}

/// The value a sort or a comparison looks at; `None` for targets that are not scalar.
fn scalar(r: &Record, target: &Target) -> Option<Val> {
    match target {
        Target::Column(column) => Some(column_text(r, column)),
        Target::Data(field) => Some(Val::from_json(r.data.get(*field))),
        Target::Secret(_) | Target::Ref { .. } => None,
    }
}

/// Whether `r` satisfies the condition `target op value`; `records` resolves references.
fn holds(records: &[Record], r: &Record, target: &Target, op: Op, value: &FilterValue) -> bool {
    match target {
        Target::Ref { field, inner, .. } => r.refs.get(*field).is_some_and(|ids| {
            ids.iter()
                .any(|id| records.iter().find(|t| t.id == *id).is_some_and(|t| holds(records, t, inner, op, value)))
        }),
        // Whatever the operator: only whether the secret is set.
        Target::Secret(field) => r.secrets.contains_key(*field) == matches!(value, FilterValue::Bool(true)),
        Target::Column(_) | Target::Data(_) => {
            let column = matches!(target, Target::Column(_));
            compare(scalar(r, target).unwrap_or(Val::Null), op, value, column)
        }
    }
}

fn compare(left: Val, op: Op, value: &FilterValue, column: bool) -> bool {
    let text = match value {
        FilterValue::Text(t) => t.clone(),
        FilterValue::Bool(b) => b.to_string(),
        FilterValue::List(items) => items.join(","),
        FilterValue::Bools(items) => items.iter().map(bool::to_string).collect::<Vec<_>>().join(","),
    };
    // A bound boolean is 1 or 0; a column's text affinity turns it into "1" or "0".
    let right = match value {
        FilterValue::Bool(b) if column => Val::Text(i64::from(*b).to_string()),
        FilterValue::Bool(b) => Val::Num(f64::from(u8::from(*b))),
        _ => Val::Text(text.clone()),
    };
    let present = !matches!(&left, Val::Null);
    let order = left.compare(&right);
    match (op, value) {
        (Op::Exists, _) => {
            let set = match &left {
                Val::Null => false,
                Val::Text(s) => !s.is_empty(),
                _ => true,
            };
            set == matches!(value, FilterValue::Bool(true))
        }
        (Op::In, FilterValue::List(items)) => {
            present && items.iter().any(|item| left.compare(&Val::Text(item.clone())) == Ordering::Equal)
        }
        (Op::In, FilterValue::Bools(items)) => {
            present && items.iter().any(|b| left.compare(&Val::Num(f64::from(u8::from(*b)))) == Ordering::Equal)
        }
        (Op::Eq | Op::In, _) => present && order == Ordering::Equal,
        (Op::Ne, _) => !present || order != Ordering::Equal,
        (Op::Gt, _) => present && order == Ordering::Greater,
        (Op::Gte, _) => present && order != Ordering::Less,
        (Op::Lt, _) => present && order == Ordering::Less,
        (Op::Lte, _) => present && order != Ordering::Greater,
        (Op::Contains | Op::StartsWith | Op::EndsWith, _) => left.like_text().is_some_and(|l| {
            let (l, t) = (l.to_ascii_lowercase(), text.to_ascii_lowercase());
            match op {
                Op::Contains => l.contains(&t),
                Op::StartsWith => l.starts_with(&t),
                _ => l.ends_with(&t),
            }
        }),
    }
}

fn matching<'a>(records: &'a [Record], kind: Kind, conditions: &'a [Condition]) -> impl Iterator<Item = &'a Record> {
    records
        .iter()
        .filter(move |r| r.kind == kind)
        .filter(move |r| conditions.iter().all(|c| holds(records, r, &c.target, c.op, &c.value)))
}

fn sort_order(sorts: &[Sort], a: &Record, b: &Record) -> Ordering {
    for s in sorts {
        let (Some(x), Some(y)) = (scalar(a, &s.target), scalar(b, &s.target)) else { continue };
        let order = x.compare(&y);
        let order = if s.descending { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.id.cmp(&b.id)
}

/// Rows skipped and taken by `LIMIT per_page OFFSET (page - 1) * per_page`.
fn page_of<T: Clone>(items: &[T], page: u32, per_page: u32) -> Vec<T> {
    let skip = (page.saturating_sub(1) as usize).saturating_mul(per_page as usize);
    items.iter().skip(skip).take(per_page as usize).cloned().collect()
}

impl Inner {
    fn exists(&self, id: &Id) -> bool {
        self.records.iter().any(|r| r.id == *id)
    }
    /// Checks a record about to be written at `position` (`None` for a new one).
    fn check(&self, record: &Record, position: Option<usize>) -> Result<(), StoreError> {
        let taken = |(i, other): (usize, &Record)| {
            Some(i) != position && ((position.is_none() && other.id == record.id) || same_key(other, record))
        };
        if self.records.iter().enumerate().any(taken) {
            return Err(StoreError::Duplicate(record.kind));
        }
        if record.refs.values().flatten().any(|id| *id != record.id && !self.exists(id)) {
            return Err(StoreError::MissingReference);
        }
        Ok(())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let before = inner.records.len();
        // The checks of `Inner::check`, against sets built once per call, so
        // that a large batch is not quadratic.
        let mut ids: HashSet<Id> = inner.records.iter().map(|r| r.id.clone()).collect();
        let mut keys: HashSet<Key> = inner.records.iter().map(key_of).collect();
        for record in records {
            let failed = if ids.contains(&record.id) || keys.contains(&key_of(record)) {
                Some(StoreError::Duplicate(record.kind))
            } else if record.refs.values().flatten().any(|id| *id != record.id && !ids.contains(id)) {
                Some(StoreError::MissingReference)
            } else {
                None
            };
            if let Some(e) = failed {
                inner.records.truncate(before);
                return Err(e);
            }
            ids.insert(record.id.clone());
            keys.insert(key_of(record));
            inner.records.push(stored(record));
        }
        Ok(())
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Some(position) = inner.records.iter().position(|r| r.id == record.id) else {
            // SQLite updates no row, then fails on the first reference row it writes.
            let refs = record.refs.values().any(|ids| !ids.is_empty());
            return if refs { Err(StoreError::MissingReference) } else { Ok(()) };
        };
        let old = &inner.records[position];
        // The kind, type and creation time stay.
        let mut new = stored(record);
        new.kind = old.kind;
        new.rtype = old.rtype;
        new.created_at = old.created_at;
        inner.check(&new, Some(position))?;
        inner.records[position] = new;
        Ok(())
    }

    async fn get(&self, kind: Kind, id: &Id) -> Result<Option<Record>, StoreError> {
        Ok(self.lock().records.iter().find(|r| r.kind == kind && r.id == *id).cloned())
    }

    async fn get_many(&self, ids: &[Id]) -> Result<Vec<Record>, StoreError> {
        let wanted: BTreeSet<&Id> = ids.iter().collect();
        Ok(self.lock().records.iter().filter(|r| wanted.contains(&r.id)).cloned().collect())
    }

    async fn find_by_key(&self, kind: Kind, key: &NaturalKey) -> Result<Option<Record>, StoreError> {
        Ok(self.lock().records.iter().find(|r| r.kind == kind && has_key(r, key)).cloned())
    }

    async fn list(&self, kind: Kind, query: &ListQuery) -> Result<(Vec<Record>, u64), StoreError> {
        let inner = self.lock();
        let mut found: Vec<&Record> = matching(&inner.records, kind, &query.conditions).collect();
        found.sort_by(|a, b| sort_order(&query.sorts, a, b));
        let total = found.len() as u64;
        let page = page_of(&found, query.page, query.per_page);
        Ok((page.into_iter().cloned().collect(), total))
    }

    async fn find_all(&self, kind: Kind, conditions: &[Condition]) -> Result<Vec<Record>, StoreError> {
        let inner = self.lock();
        let mut found: Vec<Record> = matching(&inner.records, kind, conditions).cloned().collect();
        found.sort_by(|a, b| timestamp(a.created_at).cmp(&timestamp(b.created_at)).then_with(|| a.id.cmp(&b.id)));
        Ok(found)
    }

    async fn children(&self, kind: Kind, parents: &[Id]) -> Result<Vec<Id>, StoreError> {
        let inner = self.lock();
        let children = inner.records.iter().filter(|r| r.kind == kind);
        Ok(children.filter(|r| r.key_parent().is_some_and(|p| parents.contains(p))).map(|r| r.id.clone()).collect())
    }

    async fn delete(&self, ids: &[Id]) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let doomed: BTreeSet<&Id> = ids.iter().collect();
        // Each record once, however many of its references point into the set.
        let referrers: Vec<Id> = inner
            .records
            .iter()
            .filter(|r| !doomed.contains(&r.id) && r.refs.values().flatten().any(|to| doomed.contains(to)))
            .map(|r| r.id.clone())
            .collect();
        if !referrers.is_empty() {
            return Err(StoreError::Referenced(referrers));
        }
        let before = inner.records.len();
        inner.records.retain(|r| !doomed.contains(&r.id));
        let deleted = (before - inner.records.len()) as u64;
        // What the schema does on delete: states and leases go, notifications stay unlinked.
        inner.states.retain(|_, s| !doomed.contains(&s.authorization_id));
        inner.leases.retain(|id, _| !doomed.contains(id));
        for n in &mut inner.notifications {
            if n.authorization_id.as_ref().is_some_and(|id| doomed.contains(id)) {
                n.authorization_id = None;
            }
        }
        Ok(deleted)
    }

    async fn insert_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.tokens.iter().any(|t| t.id == token.id || t.token_hash == token.token_hash) {
            return Err(StoreError::Backend("UNIQUE constraint failed: api_tokens".into()));
        }
        let mut token = token.clone();
        token.created_at = stored_time(token.created_at);
        token.expires_at = token.expires_at.map(stored_time);
        inner.tokens.push(token);
        Ok(())
    }

    async fn find_api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        Ok(self.lock().tokens.iter().find(|t| t.token_hash == token_hash).cloned())
    }

    async fn count_api_tokens(&self) -> Result<u64, StoreError> {
        Ok(self.lock().tokens.len() as u64)
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let mut tokens = self.lock().tokens.clone();
        tokens.sort_by(|a, b| timestamp(a.created_at).cmp(&timestamp(b.created_at)).then_with(|| a.id.cmp(&b.id)));
        Ok(tokens)
    }

    async fn delete_api_token(&self, id: &Id) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let before = inner.tokens.len();
        inner.tokens.retain(|t| t.id != *id);
        Ok(inner.tokens.len() < before)
    }

    async fn insert_state(&self, state: &PendingState) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.states.contains_key(&state.state_hash) {
            return Err(StoreError::Duplicate(Kind::Authorization));
        }
        if !inner.exists(&state.authorization_id) {
            return Err(StoreError::MissingReference);
        }
        let mut state = state.clone();
        state.created_at = stored_time(state.created_at);
        state.expires_at = stored_time(state.expires_at);
        inner.states.insert(state.state_hash.clone(), state);
        Ok(())
    }

    async fn take_state(&self, state_hash: &str) -> Result<Option<PendingState>, StoreError> {
        Ok(self.lock().states.remove(state_hash))
    }

    async fn insert_notification(&self, notification: &Notification) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.notifications.iter().any(|n| n.id == notification.id) {
            return Err(StoreError::Backend("UNIQUE constraint failed: notifications.id".into()));
        }
        if notification.authorization_id.as_ref().is_some_and(|id| !inner.exists(id)) {
            return Err(StoreError::Backend("FOREIGN KEY constraint failed".into()));
        }
        let mut notification = notification.clone();
        notification.created_at = stored_time(notification.created_at);
        inner.notifications.push(notification);
        Ok(())
    }

    async fn list_notifications(&self, query: &NotificationQuery) -> Result<(Vec<Notification>, u64), StoreError> {
        let inner = self.lock();
        let mut found: Vec<&Notification> = inner
            .notifications
            .iter()
            .filter(|n| query.authorization_id.as_ref().is_none_or(|id| n.authorization_id.as_ref() == Some(id)))
            .filter(|n| query.level.as_ref().is_none_or(|level| n.level == *level))
            .collect();
        found.sort_by(|a, b| timestamp(b.created_at).cmp(&timestamp(a.created_at)).then_with(|| b.id.cmp(&a.id)));
        let total = found.len() as u64;
        let page = page_of(&found, query.page.max(1), query.per_page);
        Ok((page.into_iter().cloned().collect(), total))
    }

    async fn claim_refresh(
        &self,
        id: &Id,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.exists(id) {
            return Err(StoreError::MissingReference);
        }
        // Taken over only once it has run out: `until < now`, compared as stored.
        let free = inner.leases.get(id).is_none_or(|(_, held_until)| timestamp(*held_until) < timestamp(now));
        if free {
            inner.leases.insert(id.clone(), (holder.to_owned(), stored_time(until)));
        }
        Ok(free)
    }

    async fn release_refresh(&self, id: &Id, holder: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.leases.get(id).is_some_and(|(h, _)| h == holder) {
            inner.leases.remove(id);
        }
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().meta.get(key).cloned())
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock().meta.insert(key.to_owned(), value.to_owned());
        Ok(())
    }
}
