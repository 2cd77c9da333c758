//! API tokens, notifications and meta values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

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

pub(super) fn notification(n: u32, authorization: Option<&Record>, level: &str, created: i64) -> Notification {
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
