//! Deletes: refused while referenced, whole sets, what goes with a record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

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

type Write<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, StoreError>> + Send + 'a>>;

/// Concurrent writers queue: deletes (each reading before it writes), updates
/// and inserts at once all succeed; none fails because another holds the lock.
pub async fn concurrent_writes_queue(store: &dyn Store) {
    let records: Vec<Record> = (0..40).map(|n| provider(n + 1, "Acme", &format!("p{n}"))).collect();
    for r in &records {
        insert(store, &[r]).await;
    }
    let deletes = records[..20].iter().map(|r| store.delete(std::slice::from_ref(&r.id)));
    let updates = records[20..].iter().map(|r| {
        let mut changed = r.clone();
        changed.data.insert("authorization_endpoint".into(), json!("https://changed.example/a"));
        async move { store.update(&changed).await.map(|()| 1u64) }
    });
    let inserts = (100..120)
        .map(|n| async move { store.insert(&[provider(n, "Acme", &format!("new{n}"))]).await.map(|()| 1u64) });
    let (deleted, updated, inserted) = tokio::join!(
        futures_join_all(deletes.map(|f| Box::pin(f) as Write<'_>)),
        futures_join_all(updates.map(|f| Box::pin(f) as Write<'_>)),
        futures_join_all(inserts.map(|f| Box::pin(f) as Write<'_>)),
    );
    for result in deleted.iter().chain(&updated).chain(&inserted) {
        assert!(matches!(result, Ok(1)), "a concurrent write failed: {result:?}");
    }
    assert_eq!(store.list(Kind::Provider, &query(vec![], vec![], 1, 100)).await.unwrap().1, 40);
}

/// Runs every future at once and collects the results in order.
async fn futures_join_all<'a, T>(
    futures: impl Iterator<Item = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>>,
) -> Vec<T> {
    let mut handles: Vec<_> = futures.map(Some).collect();
    let mut results: Vec<Option<T>> = handles.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in handles.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Selections larger than a database's limit of bound parameters (SQLite:
/// 32,766) are read and deleted whole.
pub async fn large_selections(store: &dyn Store) {
    const N: u32 = 33_000;
    let scopes_of = provider(1, "Big", "p");
    insert(store, &[&scopes_of]).await;
    let many: Vec<Record> = (0..N).map(|n| scope(n + 10, &scopes_of, &format!("s{n}"))).collect();
    store.insert(&many).await.unwrap();
    let all = store.find_all(Kind::Scope, &[]).await.unwrap();
    assert_eq!(all.len(), N as usize);
    assert!(all.iter().all(|s| s.key_parent() == Some(&scopes_of.id)), "every reference is read");
    let ids = ids_of(&many);
    assert_eq!(store.get_many(&ids).await.unwrap().len(), N as usize);
    assert_eq!(store.children(Kind::Scope, std::slice::from_ref(&scopes_of.id)).await.unwrap().len(), N as usize);
    assert_eq!(store.delete(&ids).await.unwrap(), u64::from(N));
    assert!(store.find_all(Kind::Scope, &[]).await.unwrap().is_empty());
}
