//! When a fresh token is refreshed, what a refusal does, and retries.

use std::time::Duration;

use serde_json::json;

use super::{done, param, state_code, tokens, until, World, BACKOFF, TOKEN_ENDPOINT};
use crate::ports::{seal_context, Sealer as _, SendError, Store as _};
use crate::{timestamp, ErrorCode, NotificationLevel, Status};

#[tokio::test]
async fn a_token_far_from_expiry_is_served_as_is_and_one_inside_the_margin_is_refreshed_once() {
    let w = World::new();
    let id = w.authorized("default").await;
    assert_eq!(w.http.sent().len(), 1, "the code exchange");

    w.to_before_expiry(&id, Duration::from_secs(301)).await;
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a1");
    assert_eq!(w.http.sent().len(), 1, "outside the margin: no request");

    w.to_before_expiry(&id, Duration::from_secs(299)).await;
    w.http.answer_json(200, tokens("a2", Some("r2")));
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a2");
    let sent = w.http.sent();
    assert_eq!(sent.len(), 2, "one refresh");
    assert_eq!(sent[1].url, TOKEN_ENDPOINT);
    assert_eq!(param(&sent[1], "grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(param(&sent[1], "refresh_token").as_deref(), Some("r1"));

    // The new grant is stored in one write, and served without asking again.
    assert_eq!(w.secret(&id, "refresh_token").await, "r2");
    let expected_expiry = timestamp(w.clock_now() + super::LIFETIME);
    assert_eq!(w.record(&id).await.data["expires_at"], json!(expected_expiry));
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a2");
    assert_eq!(w.http.sent().len(), 2);
}

#[tokio::test]
async fn without_a_refresh_strategy_a_token_is_served_until_it_expires_then_token_expired() {
    let w = World::new();
    let id = w.authorized("none").await;
    w.to_before_expiry(&id, Duration::from_secs(10)).await;
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a1", "inside the margin, still valid");

    w.to_before_expiry(&id, Duration::ZERO).await;
    w.clock.advance(Duration::from_millis(1));
    assert_eq!(state_code(w.fresh(&id).await), ErrorCode::TokenExpired);
    assert_eq!(w.record(&id).await.status(), Status::Expired);
    let notes = w.notifications(&id).await;
    assert!(notes.iter().any(|n| n.level == NotificationLevel::Warning && n.message.contains("expired")), "{notes:?}");
    // Expired stays expired, and nothing ever asked the provider.
    assert_eq!(state_code(w.fresh(&id).await), ErrorCode::TokenExpired);
    assert_eq!(w.http.sent().len(), 1, "only the code exchange");
}

#[tokio::test]
async fn invalid_grant_after_a_reauthorization_meanwhile_refreshes_with_the_new_grant() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    w.http.hold();
    w.http.answer_json(400, json!({"error": "invalid_grant"}));
    w.http.answer_json(200, tokens("a3", Some("r3")));
    let task = tokio::spawn(w.fresh(&id));
    until("the refresh with r1 is in flight", || w.http.sent().len() == 2).await;

    // Meanwhile the resource owner authorized again (another writer, no lease).
    let mut record = w.record(&id).await;
    let seal = |field: &str, v: &str| super::FakeSealer.seal(v, &seal_context(&id, field)).unwrap();
    record.secrets.insert("access_token".into(), seal("access_token", "a2"));
    record.secrets.insert("refresh_token".into(), seal("refresh_token", "r2"));
    record.data.insert("expires_at".into(), json!(timestamp(w.clock_now() + super::LIFETIME)));
    record.updated_at = w.clock_now();
    w.store.update(&record).await.unwrap();
    w.http.open();

    // The flow re-reads, sees a new refresh token and refreshes with it (it
    // does not hand out the access token the other writer stored).
    assert_eq!(done(task).await.unwrap().authorization_header(), "Bearer a3");
    let sent = w.http.sent();
    assert_eq!(sent.len(), 3);
    assert_eq!(param(&sent[1], "refresh_token").as_deref(), Some("r1"));
    assert_eq!(param(&sent[2], "refresh_token").as_deref(), Some("r2"));
    assert_eq!(w.record(&id).await.status(), Status::Authorized);
    assert_eq!(w.secret(&id, "refresh_token").await, "r3");
    assert!(w.notifications(&id).await.iter().all(|n| n.level != NotificationLevel::Error));
}

#[tokio::test]
async fn invalid_grant_with_nothing_changed_fails_the_authorization_and_notifies() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    w.http.answer_json(400, json!({"error": "invalid_grant", "error_description": "revoked"}));
    let result = w.fresh(&id).await;
    assert!(matches!(&result, Err(crate::Error::State { message, .. }) if message.contains("invalid_grant")));
    assert_eq!(state_code(result), ErrorCode::AuthorizationFailed);
    assert_eq!(w.http.sent().len(), 2, "one refresh, not retried with the same refresh token");

    let record = w.record(&id).await;
    assert_eq!(record.status(), Status::Failed);
    assert_eq!(record.data["last_error"]["error"], "invalid_grant");
    let errors: Vec<_> =
        w.notifications(&id).await.into_iter().filter(|n| n.level == NotificationLevel::Error).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("failed: invalid_grant: revoked"), "{}", errors[0].message);
    // Failed until authorized again: no more requests.
    assert_eq!(state_code(w.fresh(&id).await), ErrorCode::AuthorizationFailed);
    assert_eq!(w.http.sent().len(), 2);
}

#[tokio::test]
async fn transient_failures_are_retried_after_the_backoff_on_the_clock_not_in_real_time() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    w.http.answer(Err(SendError::Transient("connection reset".into())));
    w.http.answer_json(503, json!({"error": "temporarily_unavailable"}));
    w.http.answer_json(200, tokens("a2", Some("r2")));
    let (before, real) = (w.clock_now(), std::time::Instant::now());
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a2");
    assert_eq!(w.http.sent().len(), 4, "the exchange and three attempts");
    assert_eq!(w.clock_now() - before, BACKOFF[0] + BACKOFF[1]);
    assert!(real.elapsed() < BACKOFF[0], "the backoff waited in real time");
}

#[tokio::test]
async fn when_every_attempt_fails_for_now_the_still_valid_token_is_served_and_kept() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    for _ in 0..3 {
        w.http.answer(Err(SendError::Transient("timed out".into())));
    }
    let before = w.clock_now();
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a1");
    assert_eq!(w.http.sent().len(), 4, "the exchange and 1 + backoff.len() attempts");
    assert_eq!(w.clock_now() - before, BACKOFF[0] + BACKOFF[1]);
    let record = w.record(&id).await;
    assert_eq!((record.status(), w.secret(&id, "refresh_token").await.as_str()), (Status::Authorized, "r1"));
    let notes = w.notifications(&id).await;
    assert!(
        notes.iter().any(|n| n.level == NotificationLevel::Warning && n.message.contains("timed out")),
        "{notes:?}"
    );
    // Past expiry with the provider still away: unavailable, nothing changed.
    w.to_before_expiry(&id, Duration::ZERO).await;
    w.clock.advance(Duration::from_secs(1));
    for _ in 0..3 {
        w.http.answer(Err(SendError::Transient("timed out".into())));
    }
    assert!(matches!(w.fresh(&id).await, Err(crate::Error::Unavailable(_))));
    assert_eq!(w.record(&id).await.status(), Status::Authorized);
}

#[tokio::test]
async fn an_unusable_refresh_answer_keeps_the_grant_and_the_next_refresh_uses_it() {
    let w = World::new();
    let id = w.authorized("default").await;
    w.to_before_expiry(&id, Duration::from_secs(60)).await;
    let unusable = [
        // Not JSON nor a form, a success without a token, and more than the outbound cap.
        Ok(crate::ports::HttpResponse {
            status: 200,
            content_type: "text/html".into(),
            body: b"<html>maintenance</html>".to_vec(),
        }),
        Ok(crate::ports::HttpResponse {
            status: 200,
            content_type: "application/json".into(),
            body: br#"{"token_type":"Bearer"}"#.to_vec(),
        }),
        Err(SendError::Unreadable("the answer is larger than 1 MiB".into())),
    ];
    for (n, answer) in unusable.into_iter().enumerate() {
        w.http.answer(answer);
        assert_eq!(
            w.fresh(&id).await.unwrap().authorization_header(),
            "Bearer a1",
            "answer {n}: the token still works"
        );
        assert_eq!(w.http.sent().len(), 2 + n, "answer {n}: one attempt, not retried at once");
        let record = w.record(&id).await;
        assert_eq!(record.status(), Status::Authorized, "answer {n}: not failed");
        assert!(!record.data.contains_key("last_error"), "answer {n}: no error recorded");
        assert_eq!(w.secret(&id, "refresh_token").await, "r1", "answer {n}: the refresh token stays");
    }
    let warnings = w.notifications(&id).await.into_iter().filter(|n| n.level == NotificationLevel::Warning).count();
    assert_eq!(warnings, 3, "each unusable answer is told");
    // The next refresh presents the kept refresh token and succeeds.
    w.http.answer_json(200, tokens("a2", Some("r2")));
    assert_eq!(w.fresh(&id).await.unwrap().authorization_header(), "Bearer a2");
    assert_eq!(param(&w.http.sent()[4], "refresh_token").as_deref(), Some("r1"));
}
