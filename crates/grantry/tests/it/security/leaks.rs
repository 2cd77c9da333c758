//! Secrets stay out of reach: refused as template variables wherever they could leak,
//! scrubbed from provider errors and render errors, and never cached or guessable.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::fake_provider::{Answer, FakeProvider};
use crate::harness::{slack_provider, Response, Server, TOKEN};

use super::{
    action, authorize, header, id, oauth2_authorization, query_param, record, short, url_encoded, Echo, CLIENT_ID,
    CLIENT_SECRET,
};

/// Whether any field message of a validation error contains `needle`.
fn any_field_mentions(r: &Response, needle: &str) -> bool {
    r.body["error"]["fields"].as_object().is_some_and(|fields| {
        fields.values().filter_map(Value::as_array).flatten().any(|m| m.as_str().is_some_and(|m| m.contains(needle)))
    })
}

/// Standard base64 with padding, the form a provider would echo a secret in.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn secret_variables_are_refused_on_save_wherever_they_could_leak() {
    let echo = Echo::start().await;
    let s = Server::start().await;
    let base = json!({"type": "oauth2", "namespace": "Leak", "name": "Leak",
        "authorization_endpoint": "https://auth.example/authorize", "token_endpoint": "https://auth.example/token"});
    let with = |field: &str, value: Value| {
        let mut p = base.clone();
        p[field] = value;
        p
    };
    for (field, value, variable) in [
        ("authorization_endpoint", "https://auth.example/authorize?leak={{secret}}", "secret"),
        ("authorization_endpoint", "https://auth.example/{{identifier}}/authorize", "identifier"),
        ("token_endpoint", "https://auth.example/token/{{secret}}", "secret"),
        ("token_endpoint", "https://auth.example/token?c={{identifier}}", "identifier"),
        ("revocation_endpoint", "https://auth.example/revoke/{{access_token}}", "access_token"),
    ] {
        let r = s.post("/api/v1/providers", with(field, json!(value))).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{field} = {value}: {}", r.text);
        assert!(r.field_errors(field).iter().any(|m| m.contains(variable)), "{field} = {value}: {}", r.text);
    }
    // A custom refresh URL that carried the refresh token to a path of Grantry's own.
    let mut custom = with("refresh_token_strategy", json!("custom"));
    custom["name"] = json!("Custom");
    custom["refresh_request"] = json!({"url": format!("{}/leak/{{{{refresh_token}}}}", s.base)});
    let r = s.post("/api/v1/providers", custom.clone()).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(any_field_mentions(&r, "refresh_token"), "{}", r.text);
    assert_eq!(s.count("providers").await, 0);
    // In headers and parameters of the refresh request the token belongs.
    custom["refresh_request"] = json!({"url": "https://auth.example/refresh",
        "headers": [{"key": "X-Refresh", "value": "{{refresh_token}}"}],
        "parameters": [{"key": "rt", "value": "{{refresh_token}}"}]});
    s.create("providers", custom).await;

    let provider = s.create("providers", base.clone()).await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "main", "provider": provider["id"],
            "identifier": CLIENT_ID, "secret": CLIENT_SECRET,
            "request_token_parameters": [{"key": "assertion", "value": "{{secret}}"}],
            "request_token_headers": [{"key": "X-Client", "value": "{{identifier}}:{{secret}}"}]}),
        )
        .await;

    // Scope names go into the authorize URL.
    let r = s.post("/api/v1/scopes", json!({"provider": provider["id"], "name": "read {{secret}}"})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(r.field_errors("name").iter().any(|m| m.contains("secret")), "{}", r.text);
    s.create("scopes", json!({"provider": provider["id"], "name": "read:{{identifier}}"})).await;

    // So do authorization parameters.
    for value in ["{{identifier}}|{{secret}}", "{{access_token}}", "{{ refresh_token | base64_encode }}"] {
        let r = s
            .post(
                "/api/v1/authorizations",
                json!({"type": "oauth2", "name": "leaky", "client": client["id"],
                "parameters": [{"key": "leak", "value": value}]}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{value}: {}", r.text);
        let messages = r.field_errors("parameters[0].value");
        let variable = if value.contains("secret") {
            "`secret`"
        } else if value.contains("access") {
            "`access_token`"
        } else {
            "`refresh_token`"
        };
        assert!(messages.iter().any(|m| m.contains(variable)), "{value}: {}", r.text);
    }
    let auth = s
        .create(
            "authorizations",
            json!({"type": "oauth2", "name": "hinted", "client": client["id"], "scopes": ["read:{{identifier}}"],
            "parameters": [{"key": "login_hint", "value": "{{identifier}}"}]}),
        )
        .await;
    let before = record(&s, &auth).await;
    let r = s
        .patch(
            &format!("/api/v1/authorizations/{}", id(&auth)),
            json!({"parameters": [{"key": "leak", "value": "{{secret}}"}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert_eq!(record(&s, &auth).await, before, "a refused change changes nothing");
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.body["authorize_url"].as_str().unwrap();
    assert_eq!(query_param(url, "login_hint").as_deref(), Some(CLIENT_ID), "identifier may go into the query");
    assert!(!url.contains(CLIENT_SECRET) && !url.contains(&url_encoded(CLIENT_SECRET)), "{url}");

    // A connection's URL may not carry a basic password; its headers may.
    let (user, password) = ("USER-5b7e-conn", "PASS-0c4f-conn");
    let basic = s
        .create("authorizations", json!({"type": "basic", "name": "pw", "username": user, "password": password}))
        .await;
    for url in
        [format!("{}/{{{{username}}}}/{{{{password}}}}", echo.base), format!("{}/x?p={{{{password}}}}", echo.base)]
    {
        let r = s
            .post(
                "/api/v1/connections",
                json!({"name": "leak", "url": url, "authorization": basic["id"], "authorization_handler": true}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{url}: {}", r.text);
        assert!(
            r.field_errors("url").iter().any(|m| m.contains("username") || m.contains("password")),
            "{url}: {}",
            r.text
        );
    }
    s.create(
        "connections",
        json!({"name": "ok", "url": format!("{}/api", echo.base), "authorization": basic["id"], "authorization_handler": true,
        "headers": [{"key": "Authorization", "value": "Basic {{basic_auth}}"}]}),
    )
    .await;

    let seen = s.seen.lock().unwrap().join("\n");
    for secret in [CLIENT_SECRET, password, user] {
        assert!(!seen.contains(secret), "{secret} appeared in a response");
        assert!(!s.log_text().contains(secret), "{secret} appeared in the log");
    }
}

#[tokio::test]
async fn provider_error_answers_are_trimmed_and_scrubbed_before_they_are_stored_or_shown() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    // Secrets with characters that URL-encoding changes, so that each form differs.
    let (access, refresh) = ("AT/5e1f+scrub=access", "RT/77c2+scrub=refresh");
    fake.answer(Answer::json(json!({"access_token": access, "refresh_token": refresh, "expires_in": 3600})));
    assert_eq!(authorize(&s, &auth).await.param("status").as_deref(), Some("authorized"));

    let mut secrets = Vec::new();
    for secret in [access, refresh, CLIENT_SECRET] {
        secrets.extend([secret.to_owned(), url_encoded(secret), base64(secret.as_bytes())]);
    }
    // A provider that echoes what it received, at length, in every field it has.
    let echoed = secrets.join(" ");
    fake.answer(
        Answer::json(json!({
            "error": format!("invalid_request {refresh} {}", "E".repeat(300)),
            "error_description": format!("{echoed} {}", "d".repeat(600)),
            "error_uri": format!("https://docs.example/errors?token={}", url_encoded(refresh)),
            "debug": {"received_refresh_token": refresh, "client_secret": CLIENT_SECRET},
            "request": format!("grant_type=refresh_token&refresh_token={}", url_encoded(refresh))
        }))
        .status(400),
    );
    let answer = s.post(&action(&auth, "refresh"), json!({})).await;
    assert!(answer.status >= 400 && answer.status != 500, "{}", answer.text);

    let rec = record(&s, &auth).await;
    let last = rec["last_error"].as_object().unwrap_or_else(|| panic!("the failure is recorded: {rec}"));
    for key in last.keys() {
        assert!(
            ["error", "error_description", "error_uri", "status"].contains(&key.as_str()),
            "only the documented members are kept, not `{key}`: {}",
            rec["last_error"]
        );
    }
    assert!(last["error"].as_str().unwrap().starts_with("invalid_request"), "{}", rec["last_error"]);
    assert!(last["error"].as_str().unwrap().chars().count() <= 200, "{}", rec["last_error"]);
    let description = last.get("error_description").and_then(Value::as_str).unwrap_or_default();
    assert!(description.chars().count() <= 500, "{description}");
    assert_eq!(last["status"], 400);

    let notes = s.get(&format!("/api/v1/notifications?authorization={}", id(&auth))).await;
    assert!(notes.body["total"].as_u64().unwrap() >= 1, "{}", notes.text);
    let seen = s.seen.lock().unwrap().join("\n");
    let log = s.log_text();
    let record_text = rec.to_string();
    for secret in &secrets {
        assert!(!record_text.contains(secret.as_str()), "{secret} in the record: {record_text}");
        assert!(!notes.text.contains(secret.as_str()), "{secret} in a notification: {}", notes.text);
        assert!(!answer.text.contains(secret.as_str()), "{secret} in the error answer: {}", answer.text);
        assert!(!seen.contains(secret.as_str()), "{secret} in a response");
        assert!(!log.contains(secret.as_str()), "{secret} in the log");
    }
}

#[tokio::test]
async fn every_answer_that_carries_a_credential_says_no_store() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let oauth = oauth2_authorization(&s, &fake, json!({})).await;
    authorize(&s, &oauth).await;
    let basic =
        s.create("authorizations", json!({"type": "basic", "name": "b", "username": "u", "password": "p"})).await;
    let sign = json!({"method": "GET", "url": "https://api.example/items"}).to_string().into_bytes();
    let calls: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::POST, action(&basic, "sign"), Some(sign.clone())),
        (Method::POST, action(&oauth, "sign"), Some(sign)),
        (Method::GET, action(&oauth, "token"), None),
        (Method::GET, "/api/v1/authorizations/by-key/Acme/fake/token".into(), None),
        (
            Method::POST,
            "/api/v1/api-tokens".into(),
            Some(json!({"name": "n", "role": "viewer"}).to_string().into_bytes()),
        ),
    ];
    for (method, path, body) in calls {
        let r = s.request_with(method.clone(), &path, body, Some(TOKEN), &[]).await;
        assert!((200..300).contains(&r.status), "{method} {path}: {}", r.text);
        assert!(header(&r, "cache-control").contains("no-store"), "{method} {path}: {:?}", r.headers);
    }
}

#[tokio::test]
async fn a_provided_secret_is_always_reported_updated() {
    let s = Server::start().await;
    let secret = "SECRET-4c7d-guessable";
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "provider": slack_provider(), "name": "main", "identifier": CLIENT_ID, "secret": secret}),
        )
        .await;
    let path = format!("/api/v1/clients/{}", id(&client));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let right = s.patch(&path, json!({"secret": secret})).await;
    assert_eq!(right.status, 200, "{}", right.text);
    assert_ne!(right.body["updated_at"], client["updated_at"], "a right guess looks like any change");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let wrong = s.patch(&path, json!({"secret": "SECRET-wrong-guess"})).await;
    assert_ne!(wrong.body["updated_at"], right.body["updated_at"]);
    s.patch(&path, json!({"secret": secret})).await;

    let exported = s.post("/api/v1/clients/export", json!({})).await.body;
    let r = s.post("/api/v1/clients/import", exported.clone()).await;
    assert_eq!(r.body["unchanged"], 1, "without secrets an import changes nothing: {}", r.text);
    let mut guessed = exported;
    guessed[0]["secret"] = json!(secret);
    guessed[0]["identifier"] = json!(CLIENT_ID);
    let r = s.post("/api/v1/clients/import", guessed).await;
    assert_eq!((r.body["updated"].as_u64(), r.body["unchanged"].as_u64()), (Some(1), Some(0)), "{}", r.text);
}

#[tokio::test]
async fn a_render_error_never_quotes_the_values_it_was_given() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    // A date format built from the client secret: the standard filter would quote it in its error.
    let header = json!([{"key": "X-Date", "value": "{% assign f = secret | split: '' | join: '.' | append: '%Q%' %}{{ 'now' | date: f }}"}]);
    let auth = oauth2_authorization(&s, &fake, json!({"request_token_headers": header})).await;
    s.patch(&format!("/api/v1/authorizations/{}", id(&auth)), json!({"grant_type": "client_credentials"})).await;
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    let dotted: String = CLIENT_SECRET.chars().map(|c| format!("{c}.")).collect();
    let dotted = dotted.trim_end_matches('.');
    let record = record(&s, &auth).await.to_string();
    let notes = s.get("/api/v1/notifications").await.text;
    for text in [&r.text, &record, &notes, &s.log_text()] {
        assert!(!text.contains(dotted) && !text.contains(CLIENT_SECRET), "{}", short(text));
    }
}
