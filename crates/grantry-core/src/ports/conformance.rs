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
        origin: "default".to_owned(),
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

// ---------------------------------------------------------------- natural keys

/// Two concurrent inserts of one (namespace, name): exactly one wins.
pub async fn natural_key_race_namespaced(store: &dyn Store) {
    let a = provider(1, "Slack", "Slack");
    let b = provider(2, "Slack", "Slack").rtype("oauth1");
    let (ra, rb) = tokio::join!(store.insert(std::slice::from_ref(&a)), store.insert(std::slice::from_ref(&b)));
    let winner = match (&ra, &rb) {
        (Ok(()), r) if is_duplicate(r, Kind::Provider) => &a,
        (r, Ok(())) if is_duplicate(r, Kind::Provider) => &b,
        _ => panic!("exactly one insert must win and the other be Duplicate(provider): {ra:?} {rb:?}"),
    };
    let found = store.find_by_key(Kind::Provider, &namespaced("Slack", "Slack")).await.unwrap();
    assert_eq!(found.map(|r| r.id), Some(winner.id.clone()));
    assert_eq!(listed(store, Kind::Provider, vec![], 1, 10).await, (vec![winner.id.clone()], 1));
}

/// Two concurrent inserts of one (provider, name): exactly one wins.
pub async fn natural_key_race_child(store: &dyn Store) {
    let p = provider(1, "Slack", "Slack");
    insert(store, &[&p]).await;
    let a = scope(2, &p, "chat:write");
    let b = scope(3, &p, "chat:write");
    let (ra, rb) = tokio::join!(store.insert(std::slice::from_ref(&a)), store.insert(std::slice::from_ref(&b)));
    let winner = match (&ra, &rb) {
        (Ok(()), r) if is_duplicate(r, Kind::Scope) => &a,
        (r, Ok(())) if is_duplicate(r, Kind::Scope) => &b,
        _ => panic!("exactly one insert must win and the other be Duplicate(scope): {ra:?} {rb:?}"),
    };
    let found = store.find_by_key(Kind::Scope, &child(&p, "chat:write")).await.unwrap();
    assert_eq!(found.map(|r| r.id), Some(winner.id.clone()));
    assert_eq!(store.children(Kind::Scope, std::slice::from_ref(&p.id)).await.unwrap(), vec![winner.id.clone()]);
}

/// Providers, authorizations and connections: unique by (namespace, name) per
/// kind, across types; the same key in another namespace or kind is free.
pub async fn namespaced_natural_keys(store: &dyn Store) {
    for (base, kind, other_type) in
        [(10, Kind::Provider, "oauth1"), (20, Kind::Authorization, "basic"), (30, Kind::Connection, "connection")]
    {
        let first = record(kind, base, "Acme", "main");
        insert(store, &[&first]).await;
        let same = record(kind, base + 1, "Acme", "main").rtype(other_type);
        let result = store.insert(std::slice::from_ref(&same)).await;
        assert!(is_duplicate(&result, kind), "{kind}: same namespace and name: {result:?}");
        assert!(absent(store, &same).await);
        let other_namespace = record(kind, base + 2, "Other", "main");
        let other_name = record(kind, base + 3, "Acme", "second");
        let lower_case = record(kind, base + 4, "acme", "main");
        let empty_namespace = record(kind, base + 5, "", "main");
        insert(store, &[&other_namespace, &other_name, &lower_case, &empty_namespace]).await;
        let again = record(kind, base + 6, "", "main");
        let result = store.insert(std::slice::from_ref(&again)).await;
        assert!(is_duplicate(&result, kind), "{kind}: the empty namespace is a namespace: {result:?}");

        for (key, expected) in [
            (namespaced("Acme", "main"), Some(&first)),
            (namespaced("Other", "main"), Some(&other_namespace)),
            (namespaced("Acme", "second"), Some(&other_name)),
            (namespaced("acme", "main"), Some(&lower_case)),
            (namespaced("", "main"), Some(&empty_namespace)),
            (namespaced("Acme", "nope"), None),
        ] {
            let found = store.find_by_key(kind, &key).await.unwrap();
            assert_eq!(found.map(|r| r.id), expected.map(|r| r.id.clone()), "{kind} {key:?}");
        }
        assert_eq!(listed(store, kind, vec![], 1, 100).await.1, 5, "{kind}: five stored");
    }
}

/// Scopes and clients: unique by (provider, name), whatever their namespace.
pub async fn child_natural_keys(store: &dyn Store) {
    let p1 = provider(1, "Slack", "Slack");
    let p2 = provider(2, "Slack", "Other");
    insert(store, &[&p1, &p2]).await;
    let s1 = scope(3, &p1, "chat:write");
    let s3 = scope(5, &p2, "chat:write");
    insert(store, &[&s1, &s3]).await;
    let s2 = scope(4, &p1, "chat:write");
    let result = store.insert(std::slice::from_ref(&s2)).await;
    assert!(is_duplicate(&result, Kind::Scope), "{result:?}");
    assert!(absent(store, &s2).await);

    let c1 = client(6, &p1, "main");
    let c3 = client(8, &p2, "main");
    let scope_named_main = scope(9, &p1, "main");
    insert(store, &[&c1, &c3, &scope_named_main]).await;
    let mut c2 = client(7, &p1, "main");
    c2.namespace = "Elsewhere".into();
    let result = store.insert(std::slice::from_ref(&c2)).await;
    assert!(is_duplicate(&result, Kind::Client), "the namespace is not part of a client's key: {result:?}");
    assert!(absent(store, &c2).await);

    for (kind, key, expected) in [
        (Kind::Scope, child(&p1, "chat:write"), Some(&s1)),
        (Kind::Scope, child(&p2, "chat:write"), Some(&s3)),
        (Kind::Scope, child(&p1, "main"), Some(&scope_named_main)),
        (Kind::Client, child(&p1, "main"), Some(&c1)),
        (Kind::Client, child(&p2, "main"), Some(&c3)),
        (Kind::Client, child(&p1, "chat:write"), None),
        (Kind::Client, namespaced("Slack", "main"), None),
        (Kind::Scope, child(&s1, "chat:write"), None),
    ] {
        let found = store.find_by_key(kind, &key).await.unwrap();
        assert_eq!(found.map(|r| r.id), expected.map(|r| r.id.clone()), "{kind} {key:?}");
    }
}

/// A batch goes in whole or not at all; a batch may reference its own earlier records.
pub async fn insert_is_all_or_none(store: &dyn Store) {
    let p1 = provider(1, "A", "one");
    let p1_again = provider(2, "A", "one");
    let result = store.insert(&[p1.clone(), p1_again]).await;
    assert!(is_duplicate(&result, Kind::Provider), "a batch with a duplicate in it: {result:?}");
    assert!(absent(store, &p1).await, "nothing of a failed batch is stored");

    insert(store, &[&p1]).await;
    let p3 = provider(3, "A", "three");
    let clash = provider(4, "A", "one");
    let result = store.insert(&[p3.clone(), clash]).await;
    assert!(is_duplicate(&result, Kind::Provider), "{result:?}");
    assert!(absent(store, &p3).await, "the good record of a failed batch is not stored");

    let p5 = provider(5, "A", "five");
    let orphan = record(Kind::Scope, 6, "", "x").refs("provider", &[&id(999)]);
    let result = store.insert(&[p5.clone(), orphan]).await;
    assert!(matches!(result, Err(StoreError::MissingReference)), "{result:?}");
    assert!(absent(store, &p5).await);

    let p7 = provider(7, "A", "seven");
    let s8 = scope(8, &p7, "read");
    let c9 = client(9, &p7, "main");
    store.insert(&[p7.clone(), s8.clone(), c9.clone()]).await.unwrap();
    for r in [&p7, &s8, &c9] {
        assert_same_record(&stored(store, r).await, r);
    }
    assert_eq!(listed(store, Kind::Provider, vec![], 1, 100).await.1, 2);
}

/// A second record with a taken id is refused, and the first stays as it was.
pub async fn duplicate_id_is_refused(store: &dyn Store) {
    let p = provider(1, "A", "one");
    insert(store, &[&p]).await;
    let same_id = provider(1, "B", "other");
    assert!(store.insert(&[same_id]).await.is_err());
    assert_same_record(&stored(store, &p).await, &p);
    assert_eq!(store.find_by_key(Kind::Provider, &namespaced("B", "other")).await.unwrap().map(|r| r.id), None);
}

/// References to records that do not exist are refused, on insert and update.
pub async fn missing_reference(store: &dyn Store) {
    let orphan = record(Kind::Scope, 1, "", "x").refs("provider", &[&id(999)]);
    let result = store.insert(std::slice::from_ref(&orphan)).await;
    assert!(matches!(result, Err(StoreError::MissingReference)), "{result:?}");
    assert!(absent(store, &orphan).await);

    let p = provider(2, "Slack", "Slack");
    let s = scope(3, &p, "read");
    let c = client(4, &p, "main");
    insert(store, &[&p, &s, &c]).await;
    let a = authorization(5, "Acme", "one").refs("client", &[&c.id]).refs("scopes", &[&s.id, &id(998)]);
    let result = store.insert(std::slice::from_ref(&a)).await;
    assert!(matches!(result, Err(StoreError::MissingReference)), "one missing id of a list: {result:?}");
    assert!(absent(store, &a).await);

    let k = connection(6, "Acme", "api");
    insert(store, &[&k]).await;
    let mut broken = k.clone().refs("authorization", &[&id(997)]);
    broken.name = "renamed".into();
    let result = store.update(&broken).await;
    assert!(matches!(result, Err(StoreError::MissingReference)), "{result:?}");
    assert_same_record(&stored(store, &k).await, &k);
}

// ---------------------------------------------------------------- update and reads

/// An update replaces the fields, references and secrets: what it leaves out is gone.
pub async fn update_replaces_fields_refs_and_secrets(store: &dyn Store) {
    let p1 = provider(1, "Slack", "Slack");
    let p2 = provider(2, "Google", "Google");
    let c1 = client(3, &p1, "main");
    let c2 = client(4, &p2, "web");
    let s1 = scope(5, &p1, "chat:write");
    let s2 = scope(6, &p1, "users:read");
    let s3 = scope(7, &p2, "email");
    insert(store, &[&p1, &p2, &c1, &c2, &s1, &s2, &s3]).await;
    let a = authorization(10, "Acme", "one")
        .rtype("oauth2")
        .data("status", json!("authorized"))
        .data("authorized", json!(true))
        .data("metadata", json!({"team": "core", "n": 1}))
        .refs("client", &[&c1.id])
        .refs("scopes", &[&s2.id, &s1.id])
        .secret("access_token", "v1:at")
        .secret("refresh_token", "v1:rt");
    insert(store, &[&a]).await;
    assert_same_record(&stored(store, &a).await, &a);

    let mut changed = a.clone();
    changed.namespace = "Acme2".into();
    changed.name = "two".into();
    changed.data = Map::new();
    changed = changed
        .data("status", json!("expired"))
        .data("granted_scope", json!("email"))
        .refs("client", &[&c2.id])
        .refs("scopes", &[&s3.id]);
    changed.secrets.clear();
    changed = changed.secret("id_token", "v1:id");
    changed.origin = "shared".into();
    changed.updated_at = at(20_000);
    store.update(&changed).await.unwrap();
    assert_same_record(&stored(store, &a).await, &changed);
    assert!(store.find_by_key(Kind::Authorization, &namespaced("Acme", "one")).await.unwrap().is_none());
    let found = store.find_by_key(Kind::Authorization, &namespaced("Acme2", "two")).await.unwrap();
    assert_eq!(found.map(|r| r.id), Some(a.id.clone()));

    // Dropping a reference field leaves no trace of it.
    let mut fewer = changed.clone();
    fewer.refs.remove("scopes");
    store.update(&fewer).await.unwrap();
    let read = stored(store, &a).await;
    assert_eq!(read.refs.get("scopes").map_or(0, Vec::len), 0, "{:?}", read.refs);
    assert_eq!(read.refs.get("client"), Some(&vec![c2.id.clone()]));
    // The old scopes are no longer referenced: they can go.
    assert_eq!(store.delete(&[s1.id.clone(), s2.id.clone()]).await.unwrap(), 2);
}

/// An update that would take another record's natural key is refused; moving
/// a child to another parent moves its key.
pub async fn update_keeps_natural_keys_unique(store: &dyn Store) {
    let a = authorization(1, "Acme", "a");
    let b = authorization(2, "Acme", "b");
    let p1 = provider(3, "Slack", "Slack");
    let p2 = provider(4, "Google", "Google");
    let c1 = client(5, &p1, "main");
    let c2 = client(6, &p2, "main");
    let c3 = client(7, &p1, "spare");
    insert(store, &[&a, &b, &p1, &p2, &c1, &c2, &c3]).await;

    let mut clash = b.clone();
    clash.name = "a".into();
    let result = store.update(&clash).await;
    assert!(is_duplicate(&result, Kind::Authorization), "{result:?}");
    assert_same_record(&stored(store, &b).await, &b);

    let moved = c1.clone().refs("provider", &[&p2.id]);
    let result = store.update(&moved).await;
    assert!(is_duplicate(&result, Kind::Client), "p2 already has a client `main`: {result:?}");
    assert_same_record(&stored(store, &c1).await, &c1);

    let moved = c3.clone().refs("provider", &[&p2.id]);
    store.update(&moved).await.unwrap();
    assert_eq!(sorted(store.children(Kind::Client, std::slice::from_ref(&p2.id)).await.unwrap()), ids(&[&c2, &c3]));
    assert_eq!(store.children(Kind::Client, std::slice::from_ref(&p1.id)).await.unwrap(), ids(&[&c1]));
    let found = store.find_by_key(Kind::Client, &child(&p2, "spare")).await.unwrap();
    assert_eq!(found.map(|r| r.id), Some(c3.id.clone()));
    assert!(store.find_by_key(Kind::Client, &child(&p1, "spare")).await.unwrap().is_none());
}

/// Records read back as written; `get` is per kind; `get_many` takes any kinds and skips missing ids.
pub async fn get_get_many_and_find_by_key(store: &dyn Store) {
    let mut p = provider(1, "Slack", "Slack")
        .rtype("oauth2")
        .data("token_endpoint", json!("https://slack.com/api/oauth.v2.access"))
        .data("scope_separator", json!(","))
        .data("host_parameters", json!([{"key": "team", "pattern": "[a-z]+"}]))
        .data("refresh_request", Value::Null);
    p.origin = "shared".into();
    p.updated_at = at(5_000);
    let s = scope(2, &p, "chat:write").data("description", json!("Post messages"));
    let c = client(3, &p, "main")
        .rtype("remote_oauth")
        .secret("identifier", "v1:id")
        .secret("secret", "v1:secret")
        .data("template_parameters", json!([{"key": "k", "value": "v", "description": ""}]));
    let a = authorization(4, "", "solo").rtype("api_key").data("key_name", json!("X-Key")).secret("key_value", "v1:k");
    insert(store, &[&p, &s, &c, &a]).await;

    for r in [&p, &s, &c, &a] {
        assert_same_record(&stored(store, r).await, r);
    }
    assert!(store.get(Kind::Scope, &p.id).await.unwrap().is_none(), "get is per kind");
    assert!(store.get(Kind::Provider, &id(999)).await.unwrap().is_none());

    let many = store.get_many(&[c.id.clone(), id(999), p.id.clone(), a.id.clone()]).await.unwrap();
    assert_eq!(sorted(ids_of(&many)), ids(&[&p, &c, &a]));
    for r in [&p, &c, &a] {
        let found = many.iter().find(|m| m.id == r.id).unwrap();
        assert_same_record(found, r);
    }
    assert!(store.get_many(&[]).await.unwrap().is_empty());
    assert!(store.get_many(&[id(998)]).await.unwrap().is_empty());

    assert_same_record(&store.find_by_key(Kind::Provider, &namespaced("Slack", "Slack")).await.unwrap().unwrap(), &p);
    assert_same_record(&store.find_by_key(Kind::Client, &child(&p, "main")).await.unwrap().unwrap(), &c);
    assert_same_record(&store.find_by_key(Kind::Authorization, &namespaced("", "solo")).await.unwrap().unwrap(), &a);
    assert!(store.find_by_key(Kind::Authorization, &namespaced("Slack", "Slack")).await.unwrap().is_none());
}

// ---------------------------------------------------------------- states

fn state(hash: &str, authorization: &Record, full: bool) -> PendingState {
    PendingState {
        state_hash: hash.to_owned(),
        authorization_id: authorization.id.clone(),
        code_verifier: full.then(|| Sealed("v1:verifier".into())),
        return_to: full.then(|| "/ui/authorizations".into()),
        binding_hash: full.then(|| "binding".into()),
        created_at: at(1_000),
        expires_at: at(601_000),
    }
}

fn assert_same_state(actual: &PendingState, expected: &PendingState) {
    assert_eq!(actual.state_hash, expected.state_hash);
    assert_eq!(actual.authorization_id, expected.authorization_id);
    assert_eq!(actual.code_verifier, expected.code_verifier);
    assert_eq!(actual.return_to, expected.return_to);
    assert_eq!(actual.binding_hash, expected.binding_hash);
    assert_eq!(actual.created_at, expected.created_at);
    assert_eq!(actual.expires_at, expected.expires_at);
}

/// A state is taken once; it names an existing authorization; its hash is unique.
pub async fn states_are_single_use(store: &dyn Store) {
    let a = authorization(1, "Acme", "one");
    insert(store, &[&a]).await;
    let full = state("h1", &a, true);
    let bare = state("h2", &a, false);
    store.insert_state(&full).await.unwrap();
    store.insert_state(&bare).await.unwrap();

    assert_same_state(&store.take_state("h1").await.unwrap().expect("h1 is pending"), &full);
    assert!(store.take_state("h1").await.unwrap().is_none(), "a state works once");
    assert!(store.take_state("unknown").await.unwrap().is_none());
    assert_same_state(&store.take_state("h2").await.unwrap().expect("h2 is pending"), &bare);

    let first = state("h3", &a, true);
    store.insert_state(&first).await.unwrap();
    let mut second = state("h3", &a, false);
    second.return_to = Some("/elsewhere".into());
    assert!(store.insert_state(&second).await.is_err(), "a state hash is unique");
    assert_same_state(&store.take_state("h3").await.unwrap().unwrap(), &first);

    let mut orphan = state("h4", &a, false);
    orphan.authorization_id = id(999);
    let result = store.insert_state(&orphan).await;
    assert!(matches!(result, Err(StoreError::MissingReference)), "{result:?}");
    assert!(store.take_state("h4").await.unwrap().is_none());
}

/// Two concurrent takes of one state: exactly one gets it.
pub async fn take_state_race(store: &dyn Store) {
    let a = authorization(1, "Acme", "one");
    insert(store, &[&a]).await;
    store.insert_state(&state("h", &a, true)).await.unwrap();
    let (x, y) = tokio::join!(store.take_state("h"), store.take_state("h"));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(u8::from(x.is_some()) + u8::from(y.is_some()), 1, "exactly one take wins: {x:?} {y:?}");
}

// ---------------------------------------------------------------- refresh leases

/// A lease is taken when free or run out (`until < now`: at `until` itself it
/// is still held, also against its own holder); a late release by a former
/// holder leaves the new holder's lease alone.
pub async fn refresh_lease_claim_expiry_and_takeover(store: &dyn Store) {
    let a = authorization(1, "Acme", "a");
    let b = authorization(2, "Acme", "b");
    insert(store, &[&a, &b]).await;
    assert!(store.claim_refresh(&a.id, "A", at(0), at(30_000)).await.unwrap(), "a free lease is taken");
    assert!(!store.claim_refresh(&a.id, "B", at(1_000), at(31_000)).await.unwrap(), "held by A");
    assert!(!store.claim_refresh(&a.id, "A", at(2_000), at(32_000)).await.unwrap(), "held, even for A");
    assert!(!store.claim_refresh(&a.id, "B", at(30_000), at(60_000)).await.unwrap(), "still held at `until`");
    assert!(store.claim_refresh(&b.id, "B", at(1_000), at(31_000)).await.unwrap(), "leases are per authorization");
    assert!(store.claim_refresh(&a.id, "B", at(30_001), at(60_000)).await.unwrap(), "run out: B takes over");

    store.release_refresh(&a.id, "A").await.unwrap();
    assert!(!store.claim_refresh(&a.id, "C", at(31_000), at(90_000)).await.unwrap(), "A's release left B's lease");
    store.release_refresh(&a.id, "B").await.unwrap();
    assert!(store.claim_refresh(&a.id, "C", at(31_000), at(90_000)).await.unwrap(), "B released it");
    assert!(!store.claim_refresh(&a.id, "B", at(89_000), at(95_000)).await.unwrap(), "C holds it until 90 s");
}

/// Release frees a lease for its holder only; releasing nothing is fine; a
/// lease names an existing authorization.
pub async fn refresh_lease_release(store: &dyn Store) {
    let a = authorization(1, "Acme", "a");
    insert(store, &[&a]).await;
    store.release_refresh(&a.id, "A").await.unwrap();
    assert!(store.claim_refresh(&a.id, "A", at(0), at(30_000)).await.unwrap());
    store.release_refresh(&a.id, "B").await.unwrap();
    assert!(!store.claim_refresh(&a.id, "B", at(1_000), at(31_000)).await.unwrap(), "B's release freed nothing");
    store.release_refresh(&a.id, "A").await.unwrap();
    assert!(store.claim_refresh(&a.id, "B", at(1_000), at(31_000)).await.unwrap(), "A's release freed it");
    let result = store.claim_refresh(&id(999), "A", at(0), at(30_000)).await;
    assert!(matches!(result, Err(StoreError::MissingReference)), "{result:?}");
}

/// Two concurrent claims of a free lease: exactly one wins.
pub async fn refresh_lease_race(store: &dyn Store) {
    let a = authorization(1, "Acme", "a");
    insert(store, &[&a]).await;
    let (x, y) = tokio::join!(
        store.claim_refresh(&a.id, "A", at(0), at(30_000)),
        store.claim_refresh(&a.id, "B", at(0), at(30_000))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_ne!(x, y, "exactly one claim wins");
    let loser = if x { "B" } else { "A" };
    store.release_refresh(&a.id, loser).await.unwrap();
    assert!(!store.claim_refresh(&a.id, loser, at(1_000), at(31_000)).await.unwrap(), "the winner holds it");
}

// ---------------------------------------------------------------- filters

/// Four providers to filter: p1 Slack|Slack, p2 slack|Bot_100%, p3 Google|Google, p4 GitHub|github.
async fn providers(store: &dyn Store) -> [Record; 4] {
    let mut p3 = provider(3, "Google", "Google")
        .data("token_endpoint", json!("https://oauth2.googleapis.com/token"))
        .data("pkce", json!("s256"));
    p3.origin = "shared".into();
    let all = [
        provider(1, "Slack", "Slack")
            .data("token_endpoint", json!("https://slack.com/api/oauth.v2.access"))
            .data("pkce", json!("auto"))
            .data("revocation_endpoint", json!("https://slack.com/api/auth.revoke")),
        provider(2, "slack", "Bot_100%")
            .rtype("oauth1")
            .data("token_endpoint", json!("https://example.com/token"))
            .data("signature_method", json!("HMAC-SHA1")),
        p3,
        provider(4, "GitHub", "github").rtype("generic").data("revocation_endpoint", json!("")),
    ];
    store.insert(&all).await.unwrap();
    // Another kind, which no provider query may return.
    insert(store, &[&scope(5, &all[0], "Slack")]).await;
    all
}

/// `eq` compares exactly (case matters); `ne` also matches records without the field.
pub async fn filter_eq_and_ne(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("namespace"), Op::Eq, text("Slack")).await, ids(&[&p1]));
    assert_eq!(q(col("name"), Op::Eq, text("Slack")).await, ids(&[&p1]), "scopes are not providers");
    assert_eq!(q(col("name"), Op::Ne, text("Slack")).await, ids(&[&p2, &p3, &p4]));
    assert_eq!(q(col("type"), Op::Eq, text("oauth2")).await, ids(&[&p1, &p3]));
    assert_eq!(q(col("origin"), Op::Eq, text("shared")).await, ids(&[&p3]));
    assert_eq!(q(col("origin"), Op::Ne, text("shared")).await, ids(&[&p1, &p2, &p4]));
    assert_eq!(q(col("id"), Op::Eq, text(p2.id.as_str())).await, ids(&[&p2]));
    assert_eq!(q(col("created_at"), Op::Eq, text(&timestamp(at(2_000)))).await, ids(&[&p2]));
    assert_eq!(q(col("updated_at"), Op::Ne, text(&timestamp(at(2_000)))).await, ids(&[&p1, &p3, &p4]));
    assert_eq!(q(Target::Data("pkce"), Op::Eq, text("auto")).await, ids(&[&p1]));
    assert_eq!(q(Target::Data("pkce"), Op::Eq, text("AUTO")).await, Vec::<Id>::new());
    assert_eq!(q(Target::Data("pkce"), Op::Ne, text("auto")).await, ids(&[&p2, &p3, &p4]), "missing is not `auto`");
    assert_eq!(q(Target::Data("revocation_endpoint"), Op::Eq, text("")).await, ids(&[&p4]));
}

/// `contains`, `starts_with`, `ends_with`: ASCII case ignored, `%` and `_` literal, missing fields never match.
pub async fn filter_contains_starts_ends_with(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("name"), Op::Contains, text("lac")).await, ids(&[&p1]));
    assert_eq!(q(col("name"), Op::Contains, text("LAC")).await, ids(&[&p1]));
    assert_eq!(q(col("namespace"), Op::StartsWith, text("sl")).await, ids(&[&p1, &p2]));
    assert_eq!(q(col("namespace"), Op::StartsWith, text("lack")).await, Vec::<Id>::new());
    assert_eq!(q(col("name"), Op::EndsWith, text("HUB")).await, ids(&[&p4]));
    assert_eq!(q(col("name"), Op::EndsWith, text("git")).await, Vec::<Id>::new());
    assert_eq!(q(col("name"), Op::Contains, text("%")).await, ids(&[&p2]), "% is literal");
    assert_eq!(q(col("name"), Op::Contains, text("t_")).await, ids(&[&p2]), "_ is literal");
    assert_eq!(q(col("name"), Op::StartsWith, text("_")).await, Vec::<Id>::new());
    assert_eq!(q(Target::Data("token_endpoint"), Op::Contains, text("GoogleAPIs")).await, ids(&[&p3]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::StartsWith, text("https://")).await, ids(&[&p1, &p2, &p3]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::EndsWith, text("/token")).await, ids(&[&p2, &p3]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::Contains, text("")).await, ids(&[&p1, &p2, &p3]));

    let cafe = provider(9, "Café", "Café");
    insert(store, &[&cafe]).await;
    assert_eq!(q(col("name"), Op::Contains, text("CAFé")).await, ids(&[&cafe]));
    assert_eq!(q(col("name"), Op::Contains, text("CAFÉ")).await, Vec::<Id>::new(), "only ASCII case is ignored");
}

/// `gt`, `gte`, `lt`, `lte` compare text by bytes (upper case before lower case), times in time order.
pub async fn filter_ordering_operators(store: &dyn Store) {
    // Names in byte order: "Bot_100%" < "Google" < "Slack" < "github".
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("name"), Op::Gt, text("Google")).await, ids(&[&p1, &p4]));
    assert_eq!(q(col("name"), Op::Gte, text("Google")).await, ids(&[&p1, &p3, &p4]));
    assert_eq!(q(col("name"), Op::Lt, text("Google")).await, ids(&[&p2]));
    assert_eq!(q(col("name"), Op::Lte, text("Google")).await, ids(&[&p2, &p3]));
    assert_eq!(q(col("created_at"), Op::Gt, text(&timestamp(at(2_000)))).await, ids(&[&p3, &p4]));
    assert_eq!(q(col("created_at"), Op::Gte, text(&timestamp(at(2_000)))).await, ids(&[&p2, &p3, &p4]));
    assert_eq!(q(col("created_at"), Op::Lt, text(&timestamp(at(2_000)))).await, ids(&[&p1]));
    assert_eq!(q(col("created_at"), Op::Lte, text(&timestamp(at(2_000)))).await, ids(&[&p1, &p2]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::Lt, text("z")).await, ids(&[&p1, &p2, &p3]), "missing never");
    assert_eq!(q(Target::Data("pkce"), Op::Gte, text("b")).await, ids(&[&p3]));

    // A timestamp field of the data document compares the same way.
    let early = authorization(10, "", "early").data("expires_at", json!(timestamp(at(1_000))));
    let late = authorization(11, "", "late").data("expires_at", json!(timestamp(at(90_000))));
    let never = authorization(12, "", "never");
    insert(store, &[&early, &late, &never]).await;
    let cut = text(&timestamp(at(60_000)));
    let qa = |op, value| matching(store, Kind::Authorization, vec![cond(Target::Data("expires_at"), op, value)]);
    assert_eq!(qa(Op::Lt, cut.clone()).await, ids(&[&early]));
    assert_eq!(qa(Op::Gt, cut).await, ids(&[&late]));
}

/// `in` matches any of the listed values, exactly.
pub async fn filter_in(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("namespace"), Op::In, list_of(&["Slack", "Google", "Nope"])).await, ids(&[&p1, &p3]));
    assert_eq!(q(col("namespace"), Op::In, list_of(&["Slack"])).await, ids(&[&p1]));
    assert_eq!(q(col("namespace"), Op::In, list_of(&["SLACK", "google"])).await, Vec::<Id>::new());
    assert_eq!(q(col("id"), Op::In, list_of(&[p2.id.as_str(), p4.id.as_str()])).await, ids(&[&p2, &p4]));
    assert_eq!(q(Target::Data("pkce"), Op::In, list_of(&["auto", "s256"])).await, ids(&[&p1, &p3]));
    assert_eq!(q(Target::Data("pkce"), Op::In, list_of(&["off"])).await, Vec::<Id>::new());
}

/// `exists`: set and not empty; `exists=false` is the complement. On secrets: whether the secret is set.
pub async fn filter_exists(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let yes = FilterValue::Bool(true);
    let no = FilterValue::Bool(false);
    let q = |target, value| matching(store, Kind::Provider, vec![cond(target, Op::Exists, value)]);
    assert_eq!(q(Target::Data("pkce"), yes.clone()).await, ids(&[&p1, &p3]));
    assert_eq!(q(Target::Data("pkce"), no.clone()).await, ids(&[&p2, &p4]));
    assert_eq!(q(Target::Data("revocation_endpoint"), yes.clone()).await, ids(&[&p1]), "empty is not set");
    assert_eq!(q(Target::Data("revocation_endpoint"), no.clone()).await, ids(&[&p2, &p3, &p4]));
    assert_eq!(q(col("namespace"), yes.clone()).await, ids(&[&p1, &p2, &p3, &p4]));

    let c1 = client(10, &p1, "both").secret("identifier", "v1:i").secret("secret", "v1:s");
    let c2 = client(11, &p1, "identifier only").secret("identifier", "v1:i");
    let c3 = client(12, &p1, "none");
    insert(store, &[&c1, &c2, &c3]).await;
    let qc = |target, value| matching(store, Kind::Client, vec![cond(target, Op::Exists, value)]);
    assert_eq!(qc(Target::Secret("secret"), yes.clone()).await, ids(&[&c1]));
    assert_eq!(qc(Target::Secret("secret"), no.clone()).await, ids(&[&c2, &c3]));
    assert_eq!(qc(Target::Secret("identifier"), yes.clone()).await, ids(&[&c1, &c2]));
    assert_eq!(qc(Target::Secret("identifier"), no.clone()).await, ids(&[&c3]));

    let named = authorization(20, "Acme", "named");
    let bare = authorization(21, "", "bare");
    insert(store, &[&named, &bare]).await;
    let qa = |value| matching(store, Kind::Authorization, vec![cond(col("namespace"), Op::Exists, value)]);
    assert_eq!(qa(yes).await, ids(&[&named]));
    assert_eq!(qa(no).await, ids(&[&bare]), "an empty namespace does not exist");
}

/// Boolean fields compare as booleans; `ne` also matches a record without the field.
pub async fn filter_booleans(store: &dyn Store) {
    let on = connection(1, "Acme", "on").data("authorization_handler", json!(true));
    let off = connection(2, "Acme", "off").data("authorization_handler", json!(false));
    let unset = connection(3, "Acme", "unset");
    insert(store, &[&on, &off, &unset]).await;
    let q = |op, value| matching(store, Kind::Connection, vec![cond(Target::Data("authorization_handler"), op, value)]);
    assert_eq!(q(Op::Eq, FilterValue::Bool(true)).await, ids(&[&on]));
    assert_eq!(q(Op::Eq, FilterValue::Bool(false)).await, ids(&[&off]));
    assert_eq!(q(Op::Ne, FilterValue::Bool(true)).await, ids(&[&off, &unset]));
    assert_eq!(q(Op::Ne, FilterValue::Bool(false)).await, ids(&[&on, &unset]));
    assert_eq!(q(Op::Exists, FilterValue::Bool(true)).await, ids(&[&on, &off]), "false is set");
    assert_eq!(q(Op::Exists, FilterValue::Bool(false)).await, ids(&[&unset]));

    let yes = authorization(10, "", "yes").data("authorized", json!(true)).data("status", json!("authorized"));
    let no = authorization(11, "", "no").data("authorized", json!(false)).data("status", json!("expired"));
    insert(store, &[&yes, &no]).await;
    let conditions = vec![
        cond(Target::Data("authorized"), Op::Eq, FilterValue::Bool(false)),
        cond(Target::Data("status"), Op::Eq, text("expired")),
    ];
    assert_eq!(matching(store, Kind::Authorization, conditions).await, ids(&[&no]));
}

/// Conditions on referenced records, at any depth, by field or id; on a list
/// of references a condition holds when any referenced record satisfies it, and
/// a record without that reference satisfies none (not even `ne`).
pub async fn filter_by_reference(store: &dyn Store) {
    let p1 = provider(1, "Slack", "Slack");
    let p2 = provider(2, "Google", "Google");
    let s1 = scope(3, &p1, "chat:write");
    let s2 = scope(4, &p1, "users:read");
    let s3 = scope(5, &p2, "email");
    let c1 = client(6, &p1, "main");
    let c2 = client(7, &p2, "web");
    let a1 = authorization(8, "Acme", "slack")
        .refs("client", &[&c1.id])
        .refs("scopes", &[&s1.id, &s2.id])
        .secret("access_token", "v1:at");
    let a2 = authorization(9, "Acme", "google").refs("client", &[&c2.id]).refs("scopes", &[&s3.id]);
    let a3 = authorization(10, "", "basic").rtype("basic");
    let k1 = connection(11, "Acme", "slack").refs("authorization", &[&a1.id]);
    let k2 = connection(12, "Acme", "basic").refs("authorization", &[&a3.id]);
    let k3 = connection(13, "Acme", "open");
    insert(store, &[&p1, &p2, &s1, &s2, &s3, &c1, &c2, &a1, &a2, &a3, &k1, &k2, &k3]).await;

    let provider_of = |inner| via("provider", Kind::Provider, inner);
    let client_of = |inner| via("client", Kind::Client, inner);
    let scopes_of = |inner| via("scopes", Kind::Scope, inner);
    let authorization_of = |inner| via("authorization", Kind::Authorization, inner);
    let q = |kind, target, op, value| matching(store, kind, vec![cond(target, op, value)]);

    assert_eq!(q(Kind::Client, provider_of(col("namespace")), Op::Eq, text("Slack")).await, ids(&[&c1]));
    assert_eq!(q(Kind::Client, provider_of(col("id")), Op::Eq, text(p2.id.as_str())).await, ids(&[&c2]));
    assert_eq!(q(Kind::Scope, provider_of(col("name")), Op::Eq, text("Google")).await, ids(&[&s3]));
    assert_eq!(q(Kind::Scope, provider_of(col("name")), Op::StartsWith, text("sl")).await, ids(&[&s1, &s2]));
    let deep = client_of(provider_of(col("name")));
    assert_eq!(q(Kind::Authorization, deep, Op::Eq, text("Slack")).await, ids(&[&a1]));
    let names = scopes_of(col("name"));
    assert_eq!(q(Kind::Authorization, names.clone(), Op::Eq, text("users:read")).await, ids(&[&a1]));
    assert_eq!(q(Kind::Authorization, names.clone(), Op::Eq, text("email")).await, ids(&[&a2]));
    assert_eq!(q(Kind::Authorization, names.clone(), Op::Ne, text("chat:write")).await, ids(&[&a1, &a2]));
    assert_eq!(q(Kind::Authorization, names, Op::In, list_of(&["chat:write", "email"])).await, ids(&[&a1, &a2]));
    let client_name = client_of(col("name"));
    assert_eq!(q(Kind::Authorization, client_name.clone(), Op::In, list_of(&["main", "web"])).await, ids(&[&a1, &a2]));
    assert_eq!(q(Kind::Authorization, client_name, Op::Ne, text("main")).await, ids(&[&a2]), "a3 has no client");
    let deepest = authorization_of(client_of(provider_of(col("namespace"))));
    assert_eq!(q(Kind::Connection, deepest, Op::Eq, text("Slack")).await, ids(&[&k1]));
    let auth_name = authorization_of(col("name"));
    assert_eq!(q(Kind::Connection, auth_name, Op::Ne, text("x")).await, ids(&[&k1, &k2]), "k3 has no authorization");
    let auth_namespace = authorization_of(col("namespace"));
    assert_eq!(q(Kind::Connection, auth_namespace, Op::Exists, FilterValue::Bool(false)).await, ids(&[&k2]));
    let token = authorization_of(Target::Secret("access_token"));
    assert_eq!(q(Kind::Connection, token.clone(), Op::Exists, FilterValue::Bool(true)).await, ids(&[&k1]));
    assert_eq!(q(Kind::Connection, token, Op::Exists, FilterValue::Bool(false)).await, ids(&[&k2]));
}

/// Conditions are combined with AND, and a list is of one kind.
pub async fn filter_conditions_combine(store: &dyn Store) {
    let [p1, p2, _, _] = providers(store).await;
    let both = |a, b| matching(store, Kind::Provider, vec![a, b]);
    let starts_sl = || cond(col("namespace"), Op::StartsWith, text("sl"));
    assert_eq!(both(starts_sl(), cond(col("type"), Op::Eq, text("oauth1"))).await, ids(&[&p2]));
    assert_eq!(both(starts_sl(), cond(col("type"), Op::Eq, text("oauth2"))).await, ids(&[&p1]));
    assert_eq!(both(starts_sl(), cond(col("type"), Op::Eq, text("generic"))).await, Vec::<Id>::new());
    assert_eq!(matching(store, Kind::Provider, vec![]).await.len(), 4);
    assert_eq!(matching(store, Kind::Scope, vec![cond(col("name"), Op::Eq, text("Slack"))]).await.len(), 1);
}

// ---------------------------------------------------------------- sorting, paging, children, find_all

async fn sortable(store: &dyn Store) {
    // (n, namespace, name, created at ms, pkce)
    let rows = [
        (5, "B", "x", 1_000, None),
        (3, "A", "y", 3_000, None),
        (4, "B", "y", 2_000, Some("off")),
        (1, "A", "x", 2_000, Some("s256")),
        (2, "C", "x", 1_000, Some("auto")),
    ];
    for (n, namespace, name, created, pkce) in rows {
        let mut p = provider(n, namespace, name).created(created);
        if let Some(pkce) = pkce {
            p = p.data("pkce", json!(pkce));
        }
        insert(store, &[&p]).await;
    }
}

fn numbered(ns: &[u32]) -> Vec<Id> {
    ns.iter().map(|n| id(*n)).collect()
}

/// Sorts apply in order; ties fall back to the id, ascending, whatever the direction.
pub async fn sort_ascending_descending_with_ties(store: &dyn Store) {
    sortable(store).await;
    let order = |sorts| async move { listed(store, Kind::Provider, sorts, 1, 100).await.0 };
    assert_eq!(order(vec![]).await, numbered(&[1, 2, 3, 4, 5]), "no sort: by id");
    assert_eq!(order(vec![asc(col("namespace"))]).await, numbered(&[1, 3, 4, 5, 2]));
    assert_eq!(order(vec![desc(col("namespace"))]).await, numbered(&[2, 4, 5, 1, 3]));
    assert_eq!(order(vec![asc(col("namespace")), desc(col("name"))]).await, numbered(&[3, 1, 4, 5, 2]));
    assert_eq!(order(vec![desc(col("created_at"))]).await, numbered(&[3, 1, 4, 2, 5]));
    assert_eq!(order(vec![asc(col("created_at"))]).await, numbered(&[2, 5, 1, 4, 3]));
    assert_eq!(order(vec![desc(col("id"))]).await, numbered(&[5, 4, 3, 2, 1]));
    assert_eq!(order(vec![asc(col("name")), desc(col("created_at"))]).await, numbered(&[1, 2, 5, 3, 4]));
}

/// Sorting by a data field: records without it come first ascending, last descending.
pub async fn sort_by_data_field_nulls_first(store: &dyn Store) {
    sortable(store).await;
    let order = |sorts| async move { listed(store, Kind::Provider, sorts, 1, 100).await.0 };
    assert_eq!(order(vec![asc(Target::Data("pkce"))]).await, numbered(&[3, 5, 2, 4, 1]));
    assert_eq!(order(vec![desc(Target::Data("pkce"))]).await, numbered(&[1, 4, 2, 3, 5]));
}

/// `page` counts from 1, `per_page` records each; the total is of all matches, on every page.
pub async fn paging_and_totals(store: &dyn Store) {
    for n in 1..=7 {
        let namespace = if n % 2 == 0 { "even" } else { "odd" };
        insert(store, &[&connection(n, namespace, &format!("c{n}")).created(i64::from(10 - n) * 1000)]).await;
    }
    let by_created = || vec![asc(col("created_at"))];
    assert_eq!(listed(store, Kind::Connection, by_created(), 1, 3).await, (numbered(&[7, 6, 5]), 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 2, 3).await, (numbered(&[4, 3, 2]), 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 3, 3).await, (numbered(&[1]), 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 4, 3).await, (vec![], 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 1, 100).await.0.len(), 7);

    let odd = || vec![cond(col("namespace"), Op::Eq, text("odd"))];
    let page = |n| async move {
        let (items, total) = store.list(Kind::Connection, &query(odd(), vec![], n, 3)).await.unwrap();
        (ids_of(&items), total)
    };
    assert_eq!(page(1).await, (numbered(&[1, 3, 5]), 4));
    assert_eq!(page(2).await, (numbered(&[7]), 4));
    assert_eq!(page(3).await, (vec![], 4));
}

/// `children` finds records by their key parent (a scope's or client's provider), per kind.
pub async fn children_by_key_parent(store: &dyn Store) {
    let p1 = provider(1, "A", "one");
    let p2 = provider(2, "A", "two");
    let p3 = provider(3, "A", "three");
    let s1 = scope(4, &p1, "a");
    let s2 = scope(5, &p1, "b");
    let s3 = scope(6, &p2, "a");
    let c1 = client(7, &p1, "main");
    let c2 = client(8, &p3, "main");
    let a = authorization(9, "", "x").refs("client", &[&c1.id]).refs("scopes", &[&s1.id]);
    insert(store, &[&p1, &p2, &p3, &s1, &s2, &s3, &c1, &c2, &a]).await;
    let kids = |kind, parents: &[&Record]| {
        let parents = ids(parents);
        async move { sorted(store.children(kind, &parents).await.unwrap()) }
    };
    assert_eq!(kids(Kind::Scope, &[&p1, &p2]).await, ids(&[&s1, &s2, &s3]));
    assert_eq!(kids(Kind::Scope, &[&p2]).await, ids(&[&s3]));
    assert_eq!(kids(Kind::Scope, &[&p3]).await, Vec::<Id>::new());
    assert_eq!(kids(Kind::Client, &[&p1, &p3]).await, ids(&[&c1, &c2]));
    assert_eq!(kids(Kind::Scope, &[]).await, Vec::<Id>::new());
    assert_eq!(kids(Kind::Authorization, &[&c1, &s1]).await, Vec::<Id>::new(), "only key parents count");
}

/// `find_all` returns every match, oldest first, ties by id.
pub async fn find_all_in_creation_order(store: &dyn Store) {
    let p = provider(1, "A", "p").created(0);
    insert(store, &[&p]).await;
    for (n, name, created) in [(6, "f", 3_000), (2, "b", 5_000), (4, "d", 1_000), (3, "c", 3_000), (5, "e", 2_000)] {
        insert(store, &[&scope(n, &p, name).created(created)]).await;
    }
    let all = store.find_all(Kind::Scope, &[]).await.unwrap();
    assert_eq!(ids_of(&all), numbered(&[4, 5, 3, 6, 2]));
    let some = store.find_all(Kind::Scope, &[cond(col("name"), Op::In, list_of(&["b", "c", "d"]))]).await.unwrap();
    assert_eq!(ids_of(&some), numbered(&[4, 3, 2]));
    assert_same_record(&some[0], &scope(4, &p, "d").created(1_000));
    assert_eq!(ids_of(&store.find_all(Kind::Provider, &[]).await.unwrap()), ids(&[&p]));
    assert!(store.find_all(Kind::Client, &[]).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- delete

/// p ← s, c (provider); a → c (client), s (scopes); k → a (authorization).
async fn web(store: &dyn Store) -> [Record; 5] {
    let p = provider(1, "Slack", "Slack");
    let s = scope(2, &p, "chat:write");
    let c = client(3, &p, "main");
    let a = authorization(4, "Acme", "one").refs("client", &[&c.id]).refs("scopes", &[&s.id]);
    let k = connection(5, "Acme", "api").refs("authorization", &[&a.id]);
    insert(store, &[&p, &s, &c, &a, &k]).await;
    [p, s, c, a, k]
}

async fn referrers(store: &dyn Store, doomed: &[&Record]) -> Vec<Id> {
    match store.delete(&ids(doomed)).await {
        Err(StoreError::Referenced(found)) => sorted(found),
        other => panic!("deleting {:?} must be refused as referenced: {other:?}", ids(doomed)),
    }
}

/// A delete is refused while records outside the set reference one inside;
/// the referrers are named, each once, and nothing is deleted.
pub async fn delete_refuses_while_referenced(store: &dyn Store) {
    let [p, s, c, a, k] = web(store).await;
    assert_eq!(referrers(store, &[&p]).await, ids(&[&s, &c]));
    assert_eq!(referrers(store, &[&s]).await, ids(&[&a]));
    assert_eq!(referrers(store, &[&s, &c]).await, ids(&[&a]), "a references both, and is named once");
    assert_eq!(referrers(store, &[&p, &s]).await, ids(&[&c, &a]));
    assert_eq!(referrers(store, &[&a]).await, ids(&[&k]));
    assert_eq!(referrers(store, &[&p, &s, &c, &a]).await, ids(&[&k]));
    for r in [&p, &s, &c, &a, &k] {
        assert_same_record(&stored(store, r).await, r);
    }
}

/// A set that holds its own referrers goes at once; the count is of records that existed.
pub async fn delete_whole_set(store: &dyn Store) {
    let [p, s, c, a, k] = web(store).await;
    assert_eq!(store.delete(&[k.id.clone(), k.id.clone()]).await.unwrap(), 1, "k once");
    assert!(absent(store, &k).await);
    assert_eq!(store.delete(&ids(&[&p, &s, &c, &a])).await.unwrap(), 4);
    for r in [&p, &s, &c, &a] {
        assert!(absent(store, r).await, "{} {} is gone", r.kind, r.id);
    }
    assert!(store.find_by_key(Kind::Client, &child(&p, "main")).await.unwrap().is_none());
    assert_eq!(store.delete(&ids(&[&p, &s])).await.unwrap(), 0);
    assert_eq!(store.delete(&[]).await.unwrap(), 0);
    assert_eq!(store.delete(&[id(999)]).await.unwrap(), 0);
    // The keys are free again.
    insert(store, &[&p, &s]).await;
}

/// Deleting an authorization drops its pending states and its lease, and
/// leaves its notifications without an authorization.
pub async fn delete_cascades_to_states_leases_and_notifications(store: &dyn Store) {
    let a = authorization(1, "Acme", "one");
    let b = authorization(2, "Acme", "two");
    insert(store, &[&a, &b]).await;
    store.insert_state(&state("ha", &a, true)).await.unwrap();
    store.insert_state(&state("hb", &b, true)).await.unwrap();
    assert!(store.claim_refresh(&a.id, "A", at(0), at(60_000)).await.unwrap());
    assert!(store.claim_refresh(&b.id, "A", at(0), at(60_000)).await.unwrap());
    let na = notification(10, Some(&a), "error", 1_000);
    store.insert_notification(&na).await.unwrap();

    assert_eq!(store.delete(std::slice::from_ref(&a.id)).await.unwrap(), 1);
    assert!(store.take_state("ha").await.unwrap().is_none(), "the state went with its authorization");
    assert!(store.take_state("hb").await.unwrap().is_some(), "other states stay");
    let for_a = NotificationQuery { authorization_id: Some(a.id.clone()), per_page: 10, ..Default::default() };
    assert_eq!(store.list_notifications(&for_a).await.unwrap().1, 0);
    let all = NotificationQuery { per_page: 10, ..Default::default() };
    let (items, total) = store.list_notifications(&all).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(items, vec![Notification { authorization_id: None, ..na }]);

    insert(store, &[&a]).await;
    assert!(store.claim_refresh(&a.id, "B", at(1_000), at(61_000)).await.unwrap(), "the old lease went");
    assert!(!store.claim_refresh(&b.id, "B", at(1_000), at(61_000)).await.unwrap(), "other leases stay");
}

// ---------------------------------------------------------------- API tokens, notifications, meta

fn token(n: u32, role: Role, created: i64, expires: Option<i64>) -> ApiToken {
    ApiToken {
        id: id(n),
        name: format!("token {n}"),
        role,
        token_hash: format!("hash-{n}"),
        created_at: at(created),
        expires_at: expires.map(at),
    }
}

fn assert_same_token(actual: &ApiToken, expected: &ApiToken) {
    assert_eq!(actual.id, expected.id);
    assert_eq!(actual.name, expected.name);
    assert_eq!(actual.role, expected.role);
    assert_eq!(actual.token_hash, expected.token_hash);
    assert_eq!(actual.created_at, expected.created_at);
    assert_eq!(actual.expires_at, expected.expires_at);
}

/// Tokens are found by hash, counted, listed oldest first (ties by id), deleted once.
pub async fn api_tokens(store: &dyn Store) {
    assert_eq!(store.count_api_tokens().await.unwrap(), 0);
    let t3 = token(3, Role::Admin, 2_000, None);
    let t2 = token(2, Role::Viewer, 1_000, Some(99_000));
    let t1 = token(1, Role::Integration, 2_000, Some(5_000));
    for t in [&t3, &t2, &t1] {
        store.insert_api_token(t).await.unwrap();
    }
    let mut same_hash = token(4, Role::Editor, 3_000, None);
    same_hash.token_hash = t3.token_hash.clone();
    assert!(store.insert_api_token(&same_hash).await.is_err(), "a token hash is unique");
    assert_eq!(store.count_api_tokens().await.unwrap(), 3);

    let listed = store.list_api_tokens().await.unwrap();
    assert_eq!(listed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), numbered(&[2, 1, 3]));
    for (actual, expected) in listed.iter().zip([&t2, &t1, &t3]) {
        assert_same_token(actual, expected);
    }
    assert_same_token(&store.find_api_token("hash-2").await.unwrap().expect("t2"), &t2);
    assert_same_token(&store.find_api_token("hash-3").await.unwrap().expect("t3"), &t3);
    assert!(store.find_api_token("hash-9").await.unwrap().is_none());

    assert!(store.delete_api_token(&t2.id).await.unwrap());
    assert!(!store.delete_api_token(&t2.id).await.unwrap(), "already gone");
    assert!(!store.delete_api_token(&id(999)).await.unwrap());
    assert_eq!(store.count_api_tokens().await.unwrap(), 2);
    assert!(store.find_api_token("hash-2").await.unwrap().is_none());
    let left = store.list_api_tokens().await.unwrap();
    assert_eq!(left.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), numbered(&[1, 3]));
}

fn notification(n: u32, authorization: Option<&Record>, level: &str, created: i64) -> Notification {
    Notification {
        id: id(n),
        level: NotificationLevel::parse(level).unwrap(),
        authorization_id: authorization.map(|a| a.id.clone()),
        message: format!("message {n}"),
        created_at: at(created),
    }
}

/// Notifications: newest first, filtered by authorization and level, paged, with the total.
pub async fn notifications_newest_first_filtered_and_paged(store: &dyn Store) {
    let a = authorization(1, "Acme", "a");
    let b = authorization(2, "Acme", "b");
    insert(store, &[&a, &b]).await;
    let n1 = notification(11, Some(&a), "info", 1_000);
    let n2 = notification(12, Some(&b), "error", 2_000);
    let n3 = notification(13, None, "warning", 3_000);
    let n4 = notification(14, Some(&a), "error", 4_000);
    let n5 = notification(15, Some(&a), "info", 5_000);
    for n in [&n3, &n1, &n5, &n2, &n4] {
        store.insert_notification(n).await.unwrap();
    }
    let orphan = notification(16, Some(&record(Kind::Authorization, 99, "", "gone")), "info", 6_000);
    assert!(store.insert_notification(&orphan).await.is_err(), "a notification names an existing authorization");

    let list = |authorization: Option<&Record>, level: Option<&str>, page, per_page| {
        let query = NotificationQuery {
            authorization_id: authorization.map(|a| a.id.clone()),
            level: level.map(|l| NotificationLevel::parse(l).unwrap()),
            page,
            per_page,
        };
        async move { store.list_notifications(&query).await.unwrap() }
    };
    let all = vec![n5.clone(), n4.clone(), n3.clone(), n2.clone(), n1.clone()];
    assert_eq!(list(None, None, 1, 10).await, (all, 5));
    assert_eq!(list(Some(&a), None, 1, 10).await, (vec![n5.clone(), n4.clone(), n1.clone()], 3));
    assert_eq!(list(Some(&b), None, 1, 10).await, (vec![n2.clone()], 1));
    assert_eq!(list(None, Some("error"), 1, 10).await, (vec![n4.clone(), n2.clone()], 2));
    assert_eq!(list(Some(&a), Some("info"), 1, 10).await, (vec![n5.clone(), n1.clone()], 2));
    assert_eq!(list(Some(&b), Some("info"), 1, 10).await, (vec![], 0));
    assert_eq!(list(None, None, 1, 2).await, (vec![n5, n4], 5));
    assert_eq!(list(None, None, 2, 2).await, (vec![n3, n2], 5));
    assert_eq!(list(None, None, 3, 2).await, (vec![n1], 5));
    assert_eq!(list(None, None, 4, 2).await, (vec![], 5));
}

/// Meta values are read back, overwritten by a second set, and independent per key.
pub async fn meta_get_and_set(store: &dyn Store) {
    assert_eq!(store.meta_get("master_key_id").await.unwrap(), None);
    store.meta_set("master_key_id", "k1").await.unwrap();
    assert_eq!(store.meta_get("master_key_id").await.unwrap().as_deref(), Some("k1"));
    store.meta_set("master_key_id", "k2").await.unwrap();
    assert_eq!(store.meta_get("master_key_id").await.unwrap().as_deref(), Some("k2"));
    store.meta_set("other", "x").await.unwrap();
    assert_eq!(store.meta_get("master_key_id").await.unwrap().as_deref(), Some("k2"));
    assert_eq!(store.meta_get("other").await.unwrap().as_deref(), Some("x"));
    assert_eq!(store.meta_get("missing").await.unwrap(), None);
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
