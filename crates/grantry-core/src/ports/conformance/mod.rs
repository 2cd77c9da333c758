//! The conformance suite of the `Store` port: what every storage engine must
//! do, pinned on the SQLite engine's behaviour (the reference). Each case is a
//! `pub async fn` taking a fresh, empty store; `store_conformance!` makes one
//! `#[tokio::test]` per case in the engine's crate:
//!
//! ```text
//! async fn fresh() -> Box<MemoryStore> { Box::new(MemoryStore::new()) }
//! grantry_core::store_conformance!(fresh());
//! ```
//!
//! The expression must produce, on `.await`, something that dereferences to
//! the store (a `Box`, or a guard that also keeps its database directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod deletes;
mod keys;
mod lists;
mod states;
mod tokens;

pub use deletes::*;
pub use keys::*;
pub use lists::*;
pub use states::*;
pub use tokens::*;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{ApiToken, Notification, NotificationQuery, PendingState, Store, StoreError};
use crate::access::Role;
use crate::filter::{Condition, FilterValue, ListQuery, Op, Sort, Target};
use crate::{timestamp, Id, Kind, NaturalKey, NotificationLevel, Record, Sealed};

/// One `#[tokio::test]` per conformance case, each on the store `$fresh.await` gives.
#[macro_export]
macro_rules! store_conformance {
    ($fresh:expr) => {
        $crate::store_conformance!(@cases $fresh;
            natural_key_race_namespaced,
            natural_key_race_child,
            namespaced_natural_keys,
            child_natural_keys,
            insert_is_all_or_none,
            duplicate_id_is_refused,
            missing_reference,
            update_replaces_fields_refs_and_secrets,
            update_keeps_natural_keys_unique,
            get_get_many_and_find_by_key,
            states_are_single_use,
            take_state_race,
            refresh_lease_claim_expiry_and_takeover,
            refresh_lease_release,
            refresh_lease_race,
            filter_eq_and_ne,
            filter_contains_starts_ends_with,
            filter_ordering_operators,
            filter_in,
            filter_exists,
            filter_booleans,
            filter_by_reference,
            filter_conditions_combine,
            sort_ascending_descending_with_ties,
            sort_by_data_field_nulls_first,
            paging_and_totals,
            children_by_key_parent,
            find_all_in_creation_order,
            delete_refuses_while_referenced,
            delete_whole_set,
            delete_cascades_to_states_leases_and_notifications,
            concurrent_writes_queue,
            large_selections,
            api_tokens,
            notifications_newest_first_filtered_and_paged,
            meta_get_and_set,
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let store = $fresh.await;
                $crate::ports::conformance::$case(&*store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------- helpers

/// Fixed times, whole milliseconds, UTC: `at(ms)` is `ms` after a fixed instant.
pub fn at(ms: i64) -> OffsetDateTime {
    datetime!(2024-03-01 12:00:00 UTC) + Duration::milliseconds(ms)
}

/// Ids that sort by `n`, shaped like the UUID v7 the domain makes.
pub fn id(n: u32) -> Id {
    Id::from_string(format!("00000000-0000-7000-8000-{n:012}"))
}

/// A record of `kind` with id `id(n)`, its kind's first type, created and updated at `n` seconds.
pub fn record(kind: Kind, n: u32, namespace: &str, name: &str) -> Record {
    let t = at(i64::from(n) * 1000);
    Record {
        id: id(n),
        kind,
        rtype: kind.types()[0],
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        data: Map::new(),
        refs: BTreeMap::new(),
        secrets: BTreeMap::new(),
        origin: crate::Origin::Default,
        created_at: t,
        updated_at: t,
    }
}

/// Small builders on a record.
trait Build: Sized {
    fn rtype(self, rtype: &str) -> Self;
    fn data(self, field: &str, value: Value) -> Self;
    fn refs(self, field: &str, ids: &[&Id]) -> Self;
    fn secret(self, field: &str, sealed: &str) -> Self;
    fn created(self, ms: i64) -> Self;
}

impl Build for Record {
    fn rtype(mut self, rtype: &str) -> Self {
        self.rtype = self.kind.parse_type(rtype).unwrap();
        self
    }
    fn data(mut self, field: &str, value: Value) -> Self {
        self.data.insert(field.to_owned(), value);
        self
    }
    fn refs(mut self, field: &str, ids: &[&Id]) -> Self {
        self.refs.insert(field.to_owned(), ids.iter().map(|id| (*id).clone()).collect());
        self
    }
    fn secret(mut self, field: &str, sealed: &str) -> Self {
        self.secrets.insert(field.to_owned(), Sealed(sealed.to_owned()));
        self
    }
    fn created(mut self, ms: i64) -> Self {
        self.created_at = at(ms);
        self.updated_at = at(ms);
        self
    }
}

fn provider(n: u32, namespace: &str, name: &str) -> Record {
    record(Kind::Provider, n, namespace, name)
}
fn scope(n: u32, provider: &Record, name: &str) -> Record {
    record(Kind::Scope, n, "", name).refs("provider", &[&provider.id])
}
fn client(n: u32, provider: &Record, name: &str) -> Record {
    record(Kind::Client, n, &provider.namespace, name).refs("provider", &[&provider.id])
}
fn authorization(n: u32, namespace: &str, name: &str) -> Record {
    record(Kind::Authorization, n, namespace, name)
}
fn connection(n: u32, namespace: &str, name: &str) -> Record {
    record(Kind::Connection, n, namespace, name).data("url", json!("https://api.example.com"))
}

fn namespaced(namespace: &str, name: &str) -> NaturalKey {
    NaturalKey::Namespaced { namespace: namespace.to_owned(), name: name.to_owned() }
}
fn child(parent: &Record, name: &str) -> NaturalKey {
    NaturalKey::Child { parent: parent.id.clone(), name: name.to_owned() }
}

async fn insert(store: &dyn Store, records: &[&Record]) {
    for r in records {
        if let Err(e) = store.insert(std::slice::from_ref(*r)).await {
            panic!("inserting {} {} failed: {e:?}", r.kind, r.id);
        }
    }
}

fn ids_of(records: &[Record]) -> Vec<Id> {
    records.iter().map(|r| r.id.clone()).collect()
}
fn ids(records: &[&Record]) -> Vec<Id> {
    records.iter().map(|r| r.id.clone()).collect()
}
fn sorted(mut ids: Vec<Id>) -> Vec<Id> {
    ids.sort();
    ids
}

fn assert_same_record(actual: &Record, expected: &Record) {
    let what = format!("{} {}", expected.kind, expected.id);
    assert_eq!(actual.id, expected.id, "{what}: id");
    assert_eq!(actual.kind, expected.kind, "{what}: kind");
    assert_eq!(actual.rtype, expected.rtype, "{what}: type");
    assert_eq!(actual.namespace, expected.namespace, "{what}: namespace");
    assert_eq!(actual.name, expected.name, "{what}: name");
    assert_eq!(actual.data, expected.data, "{what}: data");
    assert_eq!(actual.refs, expected.refs, "{what}: references");
    assert_eq!(actual.secrets, expected.secrets, "{what}: secrets");
    assert_eq!(actual.origin, expected.origin, "{what}: origin");
    assert_eq!(actual.created_at, expected.created_at, "{what}: created_at");
    assert_eq!(actual.updated_at, expected.updated_at, "{what}: updated_at");
}

async fn stored(store: &dyn Store, r: &Record) -> Record {
    match store.get(r.kind, &r.id).await {
        Ok(Some(found)) => found,
        other => panic!("{} {} should be stored: {other:?}", r.kind, r.id),
    }
}

async fn absent(store: &dyn Store, r: &Record) -> bool {
    store.get(r.kind, &r.id).await.unwrap().is_none()
}

fn cond(target: Target, op: Op, value: FilterValue) -> Condition {
    Condition { target, op, value }
}
fn text(s: &str) -> FilterValue {
    FilterValue::Text(s.to_owned())
}
fn list_of(items: &[&str]) -> FilterValue {
    FilterValue::List(items.iter().map(|s| (*s).to_owned()).collect())
}
fn col(name: &'static str) -> Target {
    Target::Column(name)
}
fn via(field: &'static str, kind: Kind, inner: Target) -> Target {
    Target::Ref { field, kind, inner: Box::new(inner) }
}
fn query(conditions: Vec<Condition>, sorts: Vec<Sort>, page: u32, per_page: u32) -> ListQuery {
    ListQuery { conditions, sorts, page, per_page }
}
fn asc(target: Target) -> Sort {
    Sort { target, descending: false }
}
fn desc(target: Target) -> Sort {
    Sort { target, descending: true }
}

/// The ids of every record of `kind` matching the conditions, in id order.
async fn matching(store: &dyn Store, kind: Kind, conditions: Vec<Condition>) -> Vec<Id> {
    let (page, total) = store.list(kind, &query(conditions, vec![], 1, 100)).await.unwrap();
    assert_eq!(total, page.len() as u64, "the total counts what one big page holds");
    ids_of(&page)
}

/// The ids of one page of `kind`, in the order listed, and the total.
async fn listed(store: &dyn Store, kind: Kind, sorts: Vec<Sort>, page: u32, per_page: u32) -> (Vec<Id>, u64) {
    let (items, total) = store.list(kind, &query(vec![], sorts, page, per_page)).await.unwrap();
    (ids_of(&items), total)
}

fn is_duplicate(result: &Result<(), StoreError>, kind: Kind) -> bool {
    matches!(result, Err(StoreError::Duplicate(k)) if *k == kind)
}

/// The suite on the in-memory engine; `grantry-store` runs it on SQLite.
#[cfg(test)]
mod tests {
    use super::super::memory::MemoryStore;

    async fn fresh() -> Box<MemoryStore> {
        Box::new(MemoryStore::new())
    }

    crate::store_conformance!(fresh());
}
