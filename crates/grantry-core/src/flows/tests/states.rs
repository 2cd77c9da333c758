//! The state of an authorize request: single use, good for 10 minutes.

use std::time::Duration;

use super::{param, tokens, World, PUBLIC_URL, TOKEN_ENDPOINT};
use crate::flows::pending::STATE_TTL;
use crate::{Error, Status};

fn refused(result: Result<impl Sized, Error>) -> String {
    match result {
        Err(Error::BadRequest(message)) => message,
        Err(e) => panic!("expected bad_request, got {e:?}"),
        Ok(_) => panic!("expected bad_request, got success"),
    }
}

#[tokio::test]
async fn a_callback_after_the_state_expired_is_refused_exchanges_nothing_and_uses_the_state_up() {
    let w = World::new();
    let id = w.authorization("default").await;
    let state = w.start(&id).await;
    w.http.answer_json(200, tokens("a1", Some("r1")));
    w.clock.advance(Duration::from_secs(10 * 60) + Duration::from_millis(1));

    let message = refused(w.callback(&state).await);
    assert!(message.contains("expired"), "{message}");
    assert!(w.http.sent().is_empty(), "no token request for an expired state");
    let message = refused(w.callback(&state).await);
    assert!(message.contains("unknown or was already used"), "{message}");
    assert!(w.http.sent().is_empty());
    assert_eq!(w.record(&id).await.status(), Status::Unauthorized);
}

#[tokio::test]
async fn a_callback_in_time_exchanges_the_code_once_and_its_state_works_only_once() {
    let w = World::new();
    let id = w.authorization("default").await;
    let state = w.start(&id).await;
    w.http.answer_json(200, tokens("a1", Some("r1")));
    // The last moment the state is good for: it expires strictly after STATE_TTL.
    assert_eq!(STATE_TTL, time::Duration::minutes(10));
    w.clock.advance(Duration::from_secs(10 * 60));

    let outcome = w.callback(&state).await.unwrap();
    assert!(outcome.authorized && outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.authorization_id, id);
    let sent = w.http.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url, TOKEN_ENDPOINT);
    assert_eq!(param(&sent[0], "grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(param(&sent[0], "code").as_deref(), Some("c"));
    assert_eq!(param(&sent[0], "redirect_uri"), Some(format!("{PUBLIC_URL}/oauth/callback")));
    assert!(param(&sent[0], "code_verifier").is_some_and(|v| v.len() >= 43), "PKCE by default");
    assert_eq!(w.record(&id).await.status(), Status::Authorized);
    assert_eq!(w.secret(&id, "access_token").await, "a1");

    // The same state again: refused before anything is exchanged or changed.
    w.http.answer_json(200, tokens("stolen", None));
    let message = refused(w.callback(&state).await);
    assert!(message.contains("unknown or was already used"), "{message}");
    assert_eq!(w.http.sent().len(), 1);
    assert_eq!(w.secret(&id, "access_token").await, "a1");
}
