//! OAuth 2.0 behaviour that only a scripted provider can show on demand
//! (see `fake_provider.rs` for why each case needs the fake).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_provider::{Answer, FakeProvider};
use crate::harness::{browser, visit, Server};

/// A client of the fake provider and an oauth2 authorization using it; returns the authorization.
async fn setup(s: &Server, fake: &FakeProvider, provider_extra: Value) -> Value {
    let client = s
        .create(
            "clients",
            json!({
                "type": "remote_oauth", "name": "main", "provider": fake.provider("Fake", provider_extra),
                "identifier": "fake-client-id", "secret": "fake-client-secret",
                "request_token_parameters": [{"key": "audience", "value": "{{ aud }}"}],
                "request_token_headers": [{"key": "X-Tenant", "value": "acme"}],
                "template_parameters": [{"key": "aud", "value": "https://api.example"}]
            }),
        )
        .await;
    s.create("scopes", json!({"provider": client["provider"]["id"], "name": "read"})).await;
    s.create(
        "authorizations",
        json!({"type": "oauth2", "namespace": "Acme", "name": "fake", "client": client["id"], "scopes": ["read"]}),
    )
    .await
}

fn path(auth: &Value, action: &str) -> String {
    format!("/api/v1/authorizations/{}/{action}", auth["id"].as_str().unwrap())
}

/// Runs Authorize through the fake (which consents at once) and returns where the browser landed.
async fn authorize(s: &Server, auth: &Value) -> crate::harness::Landing {
    let r = s.post(&path(auth, "authorize"), json!({"return_to": "https://app.example/done?x=1"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.body["authorize_url"].as_str().unwrap().to_owned();
    visit(&browser(), &url).await
}

async fn record(s: &Server, auth: &Value) -> Value {
    s.get(&format!("/api/v1/authorizations/{}", auth["id"].as_str().unwrap())).await.body
}

#[tokio::test]
async fn a_get_token_method_and_a_form_answer_without_token_type_still_authorize() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({"token_method": "GET"})).await;
    fake.answer(Answer::form("access_token=form-access&refresh_token=form-refresh&expires_in=3600&scope=read"));
    let landing = authorize(&s, &auth).await;
    assert!(landing.url.starts_with("https://app.example/done?x=1&"), "{}", landing.url);
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);
    assert_eq!(landing.param("authorization").as_deref(), auth["id"].as_str());

    let seen = &fake.seen()[0];
    assert_eq!(seen.method, "GET");
    assert!(seen.body.is_empty());
    assert_eq!(seen.param("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(seen.param("code").as_deref(), Some("fake-code"));
    assert_eq!(seen.param("redirect_uri"), Some(format!("{}/oauth/callback", s.base)));
    assert!(seen.param("code_verifier").is_some_and(|v| v.len() >= 43));
    assert_eq!(seen.param("client_id").as_deref(), Some("fake-client-id"));
    assert_eq!(seen.param("client_secret").as_deref(), Some("fake-client-secret"));
    assert_eq!(seen.param("audience").as_deref(), Some("https://api.example"), "request token parameters are rendered");
    assert!(seen.headers.contains(&("x-tenant".into(), "acme".into())));
    assert!(seen.headers.contains(&("accept".into(), "application/json".into())));

    let rec = record(&s, &auth).await;
    assert_eq!((rec["status"].as_str(), rec["token_type"].as_str()), (Some("authorized"), Some("Bearer")));
    assert_eq!(rec["granted_scope"], "read");
    assert_eq!(
        rec["secrets"],
        json!({"access_token": true, "refresh_token": true, "id_token": false, "token_response": true})
    );
    let token = s.get(&path(&auth, "token")).await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert_eq!(token.body["access_token"], "form-access");
    assert_eq!(token.body["authorization_header"], "Bearer form-access");
    let by_key = s.get("/api/v1/authorizations/by-key/Acme/fake/token").await;
    assert_eq!(by_key.body["access_token"], "form-access");
}

#[tokio::test]
async fn expires_in_as_a_string_sets_the_expiry_and_basic_auth_sends_no_secret_in_the_body() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({"token_endpoint_auth_method": "client_secret_basic"})).await;
    fake.answer(Answer::json(json!({"access_token": "a", "token_type": "bearer", "expires_in": "7200"})));
    authorize(&s, &auth).await;
    let seen = &fake.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.authorization.as_deref(), Some("Basic ZmFrZS1jbGllbnQtaWQ6ZmFrZS1jbGllbnQtc2VjcmV0"));
    assert!(seen.param("client_secret").is_none());
    let token = s.get(&path(&auth, "token")).await.body;
    let expires = token["expires_at"].as_str().unwrap();
    let record = record(&s, &auth).await;
    assert_eq!(record["expires_at"], expires);
    // 7200 s after the authorization, give or take the test's own duration.
    let year_hour = &expires[..13];
    assert!(year_hour > &record["authorized_at"].as_str().unwrap()[..13], "{expires} vs {}", record["authorized_at"]);
}

#[tokio::test]
async fn an_error_inside_a_200_answer_fails_the_exchange_and_says_why() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    fake.answer(Answer::json(
        json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
    ));
    let landing = authorize(&s, &auth).await;
    assert_eq!(landing.param("status").as_deref(), Some("failed"));
    assert_eq!(
        landing.param("error").as_deref(),
        Some("bad_verification_code: The code passed is incorrect or expired.")
    );
    let rec = record(&s, &auth).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["last_error"]["error"], "bad_verification_code");
    assert_eq!(rec["secrets"]["access_token"], false);
    let token = s.get(&path(&auth, "token")).await;
    assert_eq!((token.status, token.code()), (409, "authorization_failed"));
    let notes =
        s.get(&format!("/api/v1/notifications?authorization={}&level=error", auth["id"].as_str().unwrap())).await;
    assert_eq!(notes.body["total"], 1, "{}", notes.text);
    assert!(notes.body["items"][0]["message"].as_str().unwrap().contains("bad_verification_code"));
    assert_eq!(notes.body["items"][0]["authorization"]["name"], "fake");
}

#[tokio::test]
async fn a_provider_5xx_is_retried_and_then_the_refresh_succeeds() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    // Expires within the 60 s margin: the next fresh-token call refreshes.
    fake.answer(Answer::json(json!({"access_token": "old", "refresh_token": "r-old", "expires_in": 30})));
    authorize(&s, &auth).await;
    fake.answer(Answer::json(json!({"error": "temporarily_unavailable"})).status(503));
    fake.answer(Answer {
        status: 502,
        content_type: "text/html",
        body: "<h1>Bad gateway</h1>".into(),
        delay: Duration::ZERO,
    });
    fake.answer(Answer::json(json!({"access_token": "new", "refresh_token": "r-new", "expires_in": 3600})));
    let token = s.get(&path(&auth, "token")).await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert_eq!(token.body["access_token"], "new");
    let seen = fake.seen();
    assert_eq!(seen.len(), 4, "one exchange and three refresh attempts");
    for attempt in &seen[1..] {
        assert_eq!(attempt.param("grant_type").as_deref(), Some("refresh_token"));
        assert_eq!(attempt.param("refresh_token").as_deref(), Some("r-old"));
        assert_eq!(
            attempt.param("audience").as_deref(),
            Some("https://api.example"),
            "request token parameters on refresh too"
        );
        assert!(attempt.headers.contains(&("x-tenant".into(), "acme".into())));
    }
    // The rotated refresh token is the one used next time.
    s.post(&path(&auth, "refresh"), json!({})).await;
    assert_eq!(fake.seen()[4].param("refresh_token").as_deref(), Some("r-new"));
}

#[tokio::test]
async fn a_provider_slower_than_the_timeout_is_transient_and_changes_nothing() {
    let fake = FakeProvider::start().await;
    let s = Server::start_with(&[("GRANTRY_HTTP_TIMEOUT", "1")]).await;
    let auth = setup(&s, &fake, json!({})).await;
    fake.answer(Answer::json(json!({"access_token": "still-good", "refresh_token": "r1", "expires_in": 30})));
    authorize(&s, &auth).await;
    let before = record(&s, &auth).await;
    for _ in 0..6 {
        fake.answer(Answer::json(json!({"access_token": "late"})).slow(Duration::from_secs(3)));
    }
    // Not expired yet: the caller still gets the token it had.
    let token = s.get(&path(&auth, "token")).await;
    assert_eq!((token.status, token.body["access_token"].as_str()), (200, Some("still-good")), "{}", token.text);
    // A forced refresh says the provider is unavailable.
    let forced = s.post(&path(&auth, "refresh"), json!({})).await;
    assert_eq!((forced.status, forced.code()), (503, "provider_unavailable"), "{}", forced.text);
    assert_eq!(record(&s, &auth).await, before, "the authorization stays as it was");
    let warnings =
        s.get(&format!("/api/v1/notifications?authorization={}&level=warning", auth["id"].as_str().unwrap())).await;
    assert_eq!(warnings.body["total"], 2);
    assert!(warnings.body["items"][0]["message"].as_str().unwrap().contains("timed out"), "{}", warnings.text);
}

#[tokio::test]
async fn invalid_grant_on_refresh_fails_the_authorization_and_keeps_the_record() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    fake.answer(Answer::json(json!({"access_token": "a", "refresh_token": "revoked-elsewhere", "expires_in": 10})));
    authorize(&s, &auth).await;
    fake.answer(
        Answer::json(json!({"error": "invalid_grant", "error_description": "refresh token revoked"})).status(400),
    );
    let token = s.get(&path(&auth, "token")).await;
    assert_eq!((token.status, token.code()), (409, "authorization_failed"), "{}", token.text);
    assert!(token.body["error"]["message"].as_str().unwrap().contains("must authorize again"));
    assert_eq!(fake.seen().len(), 2, "no retry when the stored refresh token did not change");
    let rec = record(&s, &auth).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(
        rec["last_error"],
        json!({"error": "invalid_grant", "error_description": "refresh token revoked", "status": 400})
    );
    let errors =
        s.get(&format!("/api/v1/notifications?authorization={}&level=error", auth["id"].as_str().unwrap())).await;
    assert!(errors.body["items"][0]["message"].as_str().unwrap().contains("invalid_grant"));
    // Authorizing again recovers.
    let landing = authorize(&s, &auth).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"));
    assert_eq!(record(&s, &auth).await["last_error"], Value::Null);
}

#[tokio::test]
async fn two_hundred_concurrent_callers_of_an_expiring_token_share_one_refresh() {
    let fake = FakeProvider::start().await;
    let s = Arc::new(Server::start().await);
    let auth = setup(&s, &fake, json!({})).await;
    fake.answer(Answer::json(json!({"access_token": "expiring", "refresh_token": "r1", "expires_in": 5})));
    authorize(&s, &auth).await;
    // Slow enough that every caller arrives while the refresh is under way.
    fake.answer(
        Answer::json(json!({"access_token": "refreshed", "refresh_token": "r2", "expires_in": 3600}))
            .slow(Duration::from_millis(300)),
    );
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let s = s.clone();
        let p = path(&auth, "token");
        tasks.push(tokio::spawn(async move { s.get(&p).await }));
    }
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!((r.status, r.body["access_token"].as_str()), (200, Some("refreshed")), "{}", r.text);
    }
    assert_eq!(fake.seen().len(), 2, "one code exchange and exactly one refresh");
}

#[tokio::test]
async fn a_fresh_token_is_served_without_a_write_or_a_request() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    authorize(&s, &auth).await;
    let before = record(&s, &auth).await;
    for _ in 0..5 {
        assert_eq!(s.get(&path(&auth, "token")).await.body["access_token"], "access-1");
    }
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(record(&s, &auth).await["updated_at"], before["updated_at"]);
}

#[tokio::test]
async fn cancel_revokes_at_the_provider_and_clears_every_token() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    authorize(&s, &auth).await;
    let r = s.post(&path(&auth, "cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "unauthorized");
    assert_eq!(
        r.body["secrets"],
        json!({"access_token": false, "refresh_token": false, "id_token": false, "token_response": false})
    );
    assert!(r.body["authorized_at"].is_null() && r.body["expires_at"].is_null());
    let revoked = fake.revoked();
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0].contains("token=refresh-1") && revoked[0].contains("token_type_hint=refresh_token"),
        "{}",
        revoked[0]
    );
    let token = s.get(&path(&auth, "token")).await;
    assert_eq!((token.status, token.code()), (409, "not_authorized"));
    // Deleting an authorized authorization cancels it first.
    authorize(&s, &auth).await;
    assert_eq!(s.delete(&format!("/api/v1/authorizations/{}", auth["id"].as_str().unwrap())).await.status, 204);
    assert_eq!(fake.revoked().len(), 2);
}

#[tokio::test]
async fn a_replayed_or_expired_state_is_refused_and_changes_nothing() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    let r = s.post(&path(&auth, "authorize"), json!({})).await;
    let url = r.body["authorize_url"].as_str().unwrap().to_owned();
    let state = url::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    assert!(state.len() >= 43, "at least 256 bits of state in base64: {state}");
    let landing = visit(&browser(), &url).await;
    assert_eq!(landing.status, 200);
    assert!(landing.body.contains("is authorized"), "{}", landing.body);
    let after = record(&s, &auth).await;

    // The same callback again: the state was used.
    let callback = format!("{}/oauth/callback?code=fake-code&state={state}", s.base);
    let again = visit(&browser(), &callback).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("unknown or was already used"), "{}", again.body);
    let unknown = visit(&browser(), &format!("{}/oauth/callback?code=x&state=forged", s.base)).await;
    assert_eq!(unknown.status, 400);
    let missing = visit(&browser(), &format!("{}/oauth/callback?code=x", s.base)).await;
    assert_eq!(missing.status, 400);

    // An expired state: age the pending request in the database, as ten minutes would.
    let r = s.post(&path(&auth, "authorize"), json!({})).await;
    let url = r.body["authorize_url"].as_str().unwrap().to_owned();
    let db = s.data_dir.join("grantry.db");
    let status = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE oauth_states SET expires_at='2000-01-01T00:00:00.000Z'\"); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    let expired = visit(&browser(), &url).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert_eq!(fake.seen().len(), 1, "no code exchange for refused states");
    assert_eq!(record(&s, &auth).await, after);
}

#[tokio::test]
async fn outgoing_requests_to_metadata_or_denied_private_addresses_are_refused() {
    let s = Server::start().await;
    let client = s
        .create("clients", json!({"type": "remote_oauth", "name": "meta", "identifier": "id", "secret": "s",
            "provider": {"type": "oauth2", "namespace": "Meta", "name": "Meta", "authorization_endpoint": "http://169.254.169.254/authorize",
                         "token_endpoint": "http://169.254.169.254/latest/meta-data/token"}}))
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "oauth2", "name": "cc", "client": client["id"], "grant_type": "client_credentials"}),
        )
        .await;
    let r = s.post(&path(&auth, "authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "failed");
    assert!(r.body["last_error"]["error_description"].as_str().unwrap().contains("may not call"), "{}", r.text);

    let fake = FakeProvider::start().await;
    // Without an allow-list, loopback is refused like any private network.
    let private = Server::start_with(&[("GRANTRY_ALLOWED_NETWORKS", "")]).await;
    let auth = setup(&private, &fake, json!({})).await;
    private
        .patch(
            &format!("/api/v1/authorizations/{}", auth["id"].as_str().unwrap()),
            json!({"grant_type": "client_credentials"}),
        )
        .await;
    let r = private.post(&path(&auth, "authorize"), json!({})).await;
    assert_eq!(r.body["status"], "failed", "{}", r.text);
    assert!(fake.seen().is_empty(), "nothing reached the loopback provider");
}

#[tokio::test]
async fn a_custom_refresh_request_is_sent_as_declared_and_read_through_its_pointers() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let refresh_request = json!({
        "method": "POST", "url": format!("{}/token?custom=1", fake.base), "body_format": "json",
        "headers": [{"key": "X-Refresh", "value": "{{ identifier | base64_encode }}"}],
        "parameters": [{"key": "rt", "value": "{{refresh_token}}"}, {"key": "old", "value": "{{access_token}}"}],
        "access_token_pointer": "/data/token", "expires_in_pointer": "/data/ttl", "refresh_token_pointer": "/data/refresh"
    });
    let auth = setup(&s, &fake, json!({"refresh_token_strategy": "custom", "refresh_request": refresh_request})).await;
    fake.answer(Answer::json(json!({"access_token": "a1", "refresh_token": "r1", "expires_in": 10})));
    authorize(&s, &auth).await;
    fake.answer(Answer::json(json!({"data": {"token": "custom-new", "ttl": 3600, "refresh": "r2"}})));
    let token = s.get(&path(&auth, "token")).await;
    assert_eq!((token.status, token.body["access_token"].as_str()), (200, Some("custom-new")), "{}", token.text);
    let seen = &fake.seen()[1];
    assert_eq!((seen.method.as_str(), seen.query.as_str()), ("POST", "custom=1"));
    let body: Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body, json!({"rt": "r1", "old": "a1"}));
    assert!(seen.headers.contains(&("x-refresh".into(), "ZmFrZS1jbGllbnQtaWQ=".into())));
    assert!(seen.headers.contains(&("content-type".into(), "application/json".into())));
    // The rotated refresh token read through its pointer is used next.
    s.post(&path(&auth, "refresh"), json!({})).await;
    let next: Value = serde_json::from_str(&fake.seen()[2].body).unwrap();
    assert_eq!(next["rt"], "r2");
}

#[tokio::test]
async fn two_processes_on_one_database_refresh_once_between_them() {
    let fake = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr)));
    let b = Arc::new(Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr)));
    let auth = setup(&a, &fake, json!({})).await;
    fake.answer(Answer::json(json!({"access_token": "expiring", "refresh_token": "r1", "expires_in": 5})));
    authorize(&a, &auth).await;
    fake.answer(
        Answer::json(json!({"access_token": "shared", "refresh_token": "r2", "expires_in": 3600}))
            .slow(Duration::from_millis(500)),
    );
    let mut tasks = Vec::new();
    for i in 0..100 {
        let server = if i % 2 == 0 { a.clone() } else { b.clone() };
        let p = path(&auth, "token");
        tasks.push(tokio::spawn(async move { server.get(&p).await }));
    }
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!((r.status, r.body["access_token"].as_str()), (200, Some("shared")), "{}", r.text);
    }
    assert_eq!(fake.seen().len(), 2, "one code exchange and one refresh across both processes");
}

#[tokio::test]
async fn tokens_stay_out_of_the_database_file_the_log_notifications_and_records() {
    let fake = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let auth = setup(&s, &fake, json!({"token_method": "GET"})).await;
    let (access, refresh, id_token) = ("AT-7f3e91-access", "RT-9c1d22-refresh", "IDT-4b8a-id-token");
    fake.answer(Answer::json(
        json!({"access_token": access, "refresh_token": refresh, "id_token": id_token, "expires_in": 10}),
    ));
    authorize(&s, &auth).await;
    // A refresh that fails with the provider echoing the token, and one that works.
    fake.answer(Answer::json(json!({"error": "invalid_request", "error_description": "bad"})).status(400));
    s.post(&path(&auth, "refresh"), json!({})).await;
    s.patch(&format!("/api/v1/authorizations/{}", auth["id"].as_str().unwrap()), json!({"metadata": {"n": 1}})).await;
    authorize(&s, &auth).await;
    s.get(&path(&auth, "token")).await;
    s.get(&format!("/api/v1/notifications?authorization={}", auth["id"].as_str().unwrap())).await;
    s.post("/api/v1/authorizations/export", json!({})).await;
    s.get("/api/v1/authorizations").await;
    s.post(&path(&auth, "cancel"), json!({})).await;

    for response in s.seen.lock().unwrap().iter() {
        assert!(
            !response.contains(refresh) && !response.contains(id_token) && !response.contains("fake-client-secret"),
            "{response}"
        );
        if response.contains(access) {
            assert!(
                response.contains("authorization_header"),
                "only the token endpoint hands the access token out: {response}"
            );
        }
    }
    let log = s.log_text();
    for secret in [access, refresh, id_token, "fake-client-secret", "fake-code"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    s.stop().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("grantry.db") {
            bytes.extend(std::fs::read(p).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [access, refresh, id_token, "fake-client-secret", "fake-client-id"] {
        assert!(!text.contains(secret), "{secret} in the database file");
    }
}

#[tokio::test]
async fn callers_waiting_on_a_refresh_take_its_result_even_when_tokens_live_shorter_than_the_margin() {
    let fake = FakeProvider::start().await;
    let s = Arc::new(Server::start().await);
    let auth = setup(&s, &fake, json!({})).await;
    fake.answer(Answer::json(json!({"access_token": "short-1", "refresh_token": "r1", "expires_in": 5})));
    authorize(&s, &auth).await;
    // The new token too lives less than the 60 s margin.
    fake.answer(
        Answer::json(json!({"access_token": "short-2", "refresh_token": "r2", "expires_in": 30}))
            .slow(Duration::from_secs(1)),
    );
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let s = s.clone();
        let p = path(&auth, "token");
        tasks.push(tokio::spawn(async move { s.get(&p).await }));
    }
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!((r.status, r.body["access_token"].as_str()), (200, Some("short-2")), "{}", r.text);
    }
    assert_eq!(fake.seen().len(), 2, "the waiting callers did not refresh again");
}

#[tokio::test]
async fn invalid_grant_after_a_rotation_elsewhere_retries_once_with_the_new_refresh_token() {
    let fake = FakeProvider::start().await;
    let s = Arc::new(Server::start().await);
    let auth = setup(&s, &fake, json!({})).await;
    fake.answer(Answer::json(json!({"access_token": "a1", "refresh_token": "r1", "expires_in": 5})));
    authorize(&s, &auth).await;
    // The refresh with r1 is refused, slowly; meanwhile a new grant stores r2.
    fake.answer(Answer::json(json!({"error": "invalid_grant"})).status(400).slow(Duration::from_millis(1500)));
    fake.answer(Answer::json(json!({"access_token": "a2", "refresh_token": "r2", "expires_in": 5})));
    fake.answer(Answer::json(json!({"access_token": "a3", "refresh_token": "r3", "expires_in": 3600})));
    let caller = {
        let s = s.clone();
        let p = path(&auth, "token");
        tokio::spawn(async move { s.get(&p).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let landing = authorize(&s, &auth).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"));
    let r = caller.await.unwrap();
    assert_eq!((r.status, r.body["access_token"].as_str()), (200, Some("a3")), "{}", r.text);
    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[1].param("refresh_token").as_deref(), Some("r1"));
    assert_eq!(seen[3].param("refresh_token").as_deref(), Some("r2"), "the retry used the rotated token");
    assert_eq!(record(&s, &auth).await["status"], "authorized");
}

#[tokio::test]
async fn token_endpoints_that_redirect_or_answer_more_than_a_mebibyte_are_refused() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    fake.answer(Answer { status: 302, content_type: "text/plain", body: String::new(), delay: Duration::ZERO });
    let landing = authorize(&s, &auth).await;
    assert_eq!(landing.param("status").as_deref(), Some("failed"), "a redirect is not followed: {}", landing.url);
    let big = format!("{{\"access_token\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    fake.answer(Answer { status: 200, content_type: "application/json", body: big, delay: Duration::ZERO });
    let landing = authorize(&s, &auth).await;
    assert_eq!(landing.param("status").as_deref(), Some("failed"));
    assert!(landing.param("error").unwrap().contains("larger than 1 MiB"), "{}", landing.url);
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn an_unusable_refresh_answer_keeps_the_grant_and_serves_the_valid_token() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = setup(&s, &fake, json!({})).await;
    // 30 s: inside the default refresh margin, so every token call refreshes.
    fake.answer(Answer::json(json!({"access_token": "a1", "refresh_token": "r1", "expires_in": 30})));
    authorize(&s, &auth).await;
    fake.answer(Answer {
        status: 200,
        content_type: "text/html",
        body: "<h1>maintenance</h1>".into(),
        delay: Duration::ZERO,
    });
    let r = s.get(&path(&auth, "token")).await;
    assert_eq!((r.status, r.body["access_token"].as_str()), (200, Some("a1")), "{}", r.text);
    let big = format!("{{\"access_token\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    fake.answer(Answer { status: 200, content_type: "application/json", body: big, delay: Duration::ZERO });
    let r = s.get(&path(&auth, "token")).await;
    assert_eq!((r.status, r.body["access_token"].as_str()), (200, Some("a1")), "{}", r.text);
    let rec = record(&s, &auth).await;
    assert_eq!(rec["status"], "authorized", "{rec}");
    assert_eq!(rec["last_error"], Value::Null);
    // The grant survived: the next refresh presents r1 and works.
    fake.answer(Answer::json(json!({"access_token": "a2", "refresh_token": "r2", "expires_in": 3600})));
    let r = s.get(&path(&auth, "token")).await;
    assert_eq!(r.body["access_token"], "a2", "{}", r.text);
    let seen = fake.seen();
    assert_eq!(seen.len(), 4, "the exchange and three refreshes, none retried at once");
    assert!(seen[1..].iter().all(|request| request.param("refresh_token").as_deref() == Some("r1")));
}
