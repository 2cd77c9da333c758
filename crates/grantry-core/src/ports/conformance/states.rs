//! Pending states (single use) and refresh leases (claim, expiry, takeover, release).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

// ---------------------------------------------------------------- states

pub(super) fn state(hash: &str, authorization: &Record, full: bool) -> PendingState {
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
