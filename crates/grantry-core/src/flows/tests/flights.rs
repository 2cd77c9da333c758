//! Single flight: one refresh per authorization at a time, within a process
//! (a mutex) and across processes (the lease in the store).

use std::time::Duration;

use super::{done, in_flight, param, tokens, tokens_for, until, World, MARGIN};
use crate::flows::refresh::LEASE;
use crate::ports::Store as _;
use crate::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fresh_tokens_inside_the_margin_make_one_refresh_and_all_get_it() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    let before = w.clock_now();
    w.http.hold();
    // Shorter-lived than the margin: the waiters take it because the record
    // changed while they waited, not because it is fresh.
    w.http.answer_json(200, tokens_for("a2", Some("r2"), MARGIN / 2));
    let callers: Vec<_> = (0..20).map(|_| tokio::spawn(w.fresh(&id))).collect();
    until("one refresh is in flight", || w.http.sent().len() == 2).await;
    // Every caller arrives at the single flight (read before the refresh lands); none sends another.
    until("all 20 callers are in the single flight", || in_flight(&w.flows, &id) == 20).await;
    assert_eq!(w.http.sent().len(), 2, "a second refresh while the first is in flight");
    assert!(callers.iter().all(|c| !c.is_finished()), "every caller waits for the refresh in flight");

    w.http.open();
    for caller in callers {
        assert_eq!(done(caller).await.unwrap().authorization_header(), "Bearer a2");
    }
    assert_eq!(w.http.sent().len(), 2, "exactly one refresh");
    // Within a process the others wait on the mutex, not by polling the lease on the clock.
    assert_eq!(w.clock_now(), before);
}

#[tokio::test]
async fn another_process_waits_for_the_lease_holder_and_takes_its_refresh() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    let b = w.other_process();
    w.http.hold();
    w.http.answer_json(200, tokens_for("a2", Some("r2"), MARGIN / 2));
    let a = tokio::spawn(w.fresh(&id));
    until("A's refresh is in flight", || w.http.sent().len() == 2).await;
    let claimed = w.clock_now();
    let b = tokio::spawn(w.fresh_on(&b, &id));
    // B finds the lease taken and waits on the clock (each wait moves it 50 ms).
    until("B waits for the lease", || w.clock_now() > claimed).await;
    assert_eq!(w.http.sent().len(), 2, "B sends nothing while A holds the lease");

    w.http.open();
    assert_eq!(done(a).await.unwrap().authorization_header(), "Bearer a2");
    assert_eq!(done(b).await.unwrap().authorization_header(), "Bearer a2", "B takes A's refresh");
    assert_eq!(w.http.sent().len(), 2, "exactly one refresh in all");
    assert!(w.clock_now() - claimed < LEASE, "B did not wait out the lease");
}

#[tokio::test]
async fn once_the_lease_runs_out_another_process_refreshes_again_and_the_last_answer_wins() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(120)).await;
    let b = w.other_process();
    w.http.hold();
    w.http.answer_json(200, tokens("a2", Some("r2")));
    w.http.answer_json(200, tokens("a3", Some("r3")));
    let a = tokio::spawn(w.fresh(&id));
    until("A's refresh is in flight", || w.http.sent().len() == 2).await;
    let claimed = w.clock_now();
    let b = tokio::spawn(w.fresh_on(&b, &id));

    // A stays stuck; B's waits move the clock until A's lease has run out,
    // then B claims it and refreshes with the refresh token still stored.
    until("B's own refresh", || w.http.sent().len() == 3).await;
    assert!(w.clock_now() - claimed > LEASE);
    assert!(w.clock_now() - claimed < LEASE + time::Duration::seconds(1));
    let sent = w.http.sent();
    assert_eq!(param(&sent[1], "refresh_token").as_deref(), Some("r1"), "A");
    assert_eq!(param(&sent[2], "refresh_token").as_deref(), Some("r1"), "B, the same refresh token");

    // A's late answer is still stored (nothing fences a holder whose lease
    // ran out), and A's release leaves B's lease in place.
    w.http.let_through(1);
    assert_eq!(done(a).await.unwrap().authorization_header(), "Bearer a2");
    assert_eq!(w.secret(&id, "refresh_token").await, "r2");
    let now = w.clock_now();
    assert!(!w.store.claim_refresh(&id, "probe", now, now).await.unwrap(), "B's lease was released by A");

    w.http.let_through(1);
    assert_eq!(done(b).await.unwrap().authorization_header(), "Bearer a3");
    assert_eq!(w.http.sent().len(), 3, "two refreshes in all");
    assert_eq!((w.secret(&id, "refresh_token").await, w.secret(&id, "access_token").await), ("r3".into(), "a3".into()));
    assert_eq!(w.record(&id).await.status(), Status::Authorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_that_waited_share_a_failed_refresh_instead_of_retrying_it_each() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    w.http.hold();
    // The provider is away: the first caller's whole retry sequence fails.
    for _ in 0..3 {
        w.http.answer(Err(crate::ports::SendError::Transient("timed out".into())));
    }
    let callers: Vec<_> = (0..10).map(|_| tokio::spawn(w.fresh(&id))).collect();
    until("one refresh is in flight", || w.http.sent().len() == 2).await;
    until("all 10 callers are in the single flight", || in_flight(&w.flows, &id) == 10).await;
    w.http.open();
    for caller in callers {
        // The token still works, so each caller gets it; none asked again.
        assert_eq!(done(caller).await.unwrap().authorization_header(), "Bearer a1");
    }
    assert_eq!(w.http.sent().len(), 1 + 3, "the exchange and one retry sequence, shared by all");
    assert_eq!(w.record(&id).await.status(), Status::Authorized);
    // A caller arriving after the failure tries again: the outcome is shared only with those that waited.
    w.http.answer_json(200, tokens("a2", Some("r2")));
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a2");
    assert_eq!(param(&w.http.sent()[4], "refresh_token").as_deref(), Some("r1"));
}
