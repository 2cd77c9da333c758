//! Natural keys (races included), all-or-none inserts, references, updates and reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

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
    changed.origin = crate::Origin::Shared;
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
    p.origin = crate::Origin::Shared;
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
