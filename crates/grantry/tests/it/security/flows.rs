//! Authorization flows under attack: callback parameters never reach the token
//! request, return addresses and expiries are checked, and a UI flow is bound to its browser.

use serde_json::{json, Value};

use crate::fake_provider::{Answer, FakeProvider};
use crate::harness::{browser, visit, Server, TOKEN};

use super::{
    action, authorize, csrf_of, id, oauth2_authorization, query_param, record, start_flow, url_encoded, CLIENT_ID,
    CLIENT_SECRET,
};

async fn warnings(s: &Server, auth: &Value) -> u64 {
    let r = s.get(&format!("/api/v1/notifications?authorization={}&level=warning", id(auth))).await;
    r.body["total"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn callback_parameters_never_become_template_variables_of_the_token_request() {
    let fake = FakeProvider::start().await;
    let evil = FakeProvider::start().await;
    let s = Server::start().await;

    // A port taken from a variable is refused on save: nothing templates the authority but a host label.
    let r = s
        .post("/api/v1/providers", fake.provider("Port", json!({"token_endpoint": "http://127.0.0.1:{{port}}/token"})))
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(!r.field_errors("token_endpoint").is_empty(), "{}", r.text);

    let auth = oauth2_authorization(
        &s,
        &fake,
        json!({
            "template_parameters": [{"key": "aud", "value": "https://api.example"}, {"key": "shop", "value": "acme"}],
            "request_token_parameters": [
                {"key": "audience", "value": "{{aud}}"},
                {"key": "shop", "value": "{{shop}}"},
                {"key": "port", "value": "{{port}}"}
            ]
        }),
    )
    .await;
    let url = start_flow(&s, &auth).await;
    let state = query_param(&url, "state").unwrap();
    // The browser comes back with everything an attacker can append to the callback.
    let evil_port = url::Url::parse(&evil.base).unwrap().port().unwrap().to_string();
    let mut callback = url::Url::parse(&format!("{}/oauth/callback", s.base)).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("state", &state)
        .append_pair("code", "fake-code")
        .append_pair("port", &evil_port)
        .append_pair("shop", "evil")
        .append_pair("aud", "https://evil.example")
        .append_pair("redirect_uri", &format!("{}/cb", evil.base))
        .append_pair("code_verifier", "attacker-chosen-verifier")
        .append_pair("client_id", "attacker")
        .append_pair("identifier", "attacker")
        .append_pair("secret", "attacker");
    let landing = visit(&browser(), callback.as_str()).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);

    assert!(evil.seen().is_empty(), "nothing reached the host the callback named");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "one code exchange, at the provider's own endpoint");
    let exchange = &seen[0];
    assert_eq!(exchange.param("audience").as_deref(), Some("https://api.example"));
    assert_eq!(exchange.param("shop").as_deref(), Some("acme"));
    assert_ne!(exchange.param("port"), Some(evil_port.clone()));
    assert_eq!(exchange.param("redirect_uri"), Some(format!("{}/oauth/callback", s.base)));
    assert_eq!(exchange.param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(exchange.param("client_secret").as_deref(), Some(CLIENT_SECRET));
    let verifier = exchange.param("code_verifier").unwrap_or_default();
    assert!(verifier.len() >= 43 && verifier != "attacker-chosen-verifier", "{verifier}");
    let token = s.get(&action(&auth, "token")).await;
    assert_eq!(token.body["access_token"], "access-1", "the tokens are the real provider's");
}

#[tokio::test]
async fn out_of_range_expiries_from_a_provider_are_an_unknown_expiry_with_a_warning() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    let answers = [
        json!({"access_token": "huge-float", "refresh_token": "r1", "expires_in": 1e18}),
        json!({"access_token": "huge-integer", "refresh_token": "r2", "expires_in": 1_000_000_000_000_000_000u64}),
        json!({"access_token": "far-created", "refresh_token": "r3", "expires_in": 3600, "created_at": 253_402_300_799u64}),
        json!({"access_token": "far-created-text", "refresh_token": "r4", "expires_in": 3600, "created_at": "9999-12-31T23:59:59Z"}),
    ];
    for (n, answer) in answers.into_iter().enumerate() {
        let expected = answer["access_token"].as_str().unwrap().to_owned();
        fake.answer(Answer::json(answer));
        let landing = authorize(&s, &auth).await;
        assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{expected}: {}", landing.url);
        let rec = record(&s, &auth).await;
        assert_eq!(rec["status"], "authorized", "{expected}: {rec}");
        assert!(rec["expires_at"].is_null(), "{expected}: {}", rec["expires_at"]);
        let token = s.get(&action(&auth, "token")).await;
        assert_eq!(
            (token.status, token.body["access_token"].as_str()),
            (200, Some(expected.as_str())),
            "{}",
            token.text
        );
        assert!(warnings(&s, &auth).await > n as u64, "{expected}: a warning says the expiry is unknown");
    }
    // Nothing was left locked: a refresh goes through and stores a real expiry.
    let r = s.post(&action(&auth, "refresh"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!record(&s, &auth).await["expires_at"].is_null());
    assert_eq!(fake.seen().len(), 5);
}

#[tokio::test]
async fn return_to_must_be_an_https_url_of_an_allowed_origin() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    for return_to in [
        "http:\\\\evil.example",
        "https://evil.example/x",
        "javascript:alert(1)",
        "http://app.example/done",
        "https://app.example.evil.example/done",
        "https://app.example@evil.example/done",
        "//evil.example/x",
        "http://127.0.0.1:1/x",
    ] {
        let r = s.post(&action(&auth, "authorize"), json!({"return_to": return_to})).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{return_to}: {}", r.text);
        assert!(!r.field_errors("return_to").is_empty(), "{return_to}: {}", r.text);
    }
    // The listed origin, and Grantry's own (http is fine for a loopback public URL).
    let own = format!("{}/ui/authorizations/{}", s.base, id(&auth));
    for return_to in ["https://app.example/done?x=1", own.as_str()] {
        let r = s.post(&action(&auth, "authorize"), json!({"return_to": return_to})).await;
        assert_eq!(r.status, 200, "{return_to}: {}", r.text);
    }
    let landing = authorize(&s, &auth).await;
    assert!(landing.url.starts_with("https://app.example/done?"), "{}", landing.url);
    assert_eq!(landing.param("status").as_deref(), Some("authorized"));
}

#[tokio::test]
async fn a_callback_error_for_an_authorized_authorization_leaves_it_authorized_and_warns() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    assert_eq!(authorize(&s, &auth).await.param("status").as_deref(), Some("authorized"));
    let before = record(&s, &auth).await;
    let url = start_flow(&s, &auth).await;
    let state = query_param(&url, "state").unwrap();
    let callback = format!(
        "{}/oauth/callback?state={}&error=access_denied&error_description=the+user+pressed+cancel",
        s.base,
        url_encoded(&state)
    );
    let landing = visit(&browser(), &callback).await;
    assert_ne!(landing.status, 500, "{}", landing.body);
    let after = record(&s, &auth).await;
    assert_eq!((after["status"].as_str(), after["authorized"].as_bool()), (Some("authorized"), Some(true)), "{after}");
    assert_eq!(after["secrets"]["access_token"], true);
    assert_eq!(after["authorized_at"], before["authorized_at"]);
    let token = s.get(&action(&auth, "token")).await;
    assert_eq!((token.status, token.body["access_token"].as_str()), (200, Some("access-1")));
    assert!(warnings(&s, &auth).await >= 1, "a warning says the provider sent an error");
    assert_eq!(fake.seen().len(), 1);
}

/// The link a UI page sends the browser on with (`id="continue"`), unescaped.
fn continue_link(html: &str) -> String {
    let href = html.split("id=\"continue\" href=\"").nth(1).unwrap_or("").split('"').next().unwrap_or("");
    href.replace("&amp;", "&").replace("&#38;", "&").replace("&#x27;", "'")
}

#[tokio::test]
async fn a_flow_started_in_the_ui_completes_only_in_the_browser_session_that_started_it() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "ui", "provider": fake.provider("Bound", json!({})),
                   "identifier": "bound-client-id", "secret": "bound-client-secret"}),
        )
        .await;
    let auth = s.create("authorizations", json!({"type": "oauth2", "name": "bound", "client": client["id"]})).await;
    let id = auth["id"].as_str().unwrap();
    // The person's browser keeps its cookies: the UI session and the flow cookie.
    let person = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let signed_in = person.post(format!("{}/ui/login", s.base)).form(&[("token", TOKEN)]).send().await.unwrap();
    assert_eq!(signed_in.status(), 200, "signed in and on the client list");
    let start = |csrf: String| {
        let person = person.clone();
        let url = format!("{}/ui/authorizations/{id}/authorize", s.base);
        async move { person.post(url).form(&[("csrf", csrf)]).send().await.unwrap() }
    };
    let page = person.get(format!("{}/ui/authorizations/{id}", s.base)).send().await.unwrap().text().await.unwrap();
    let leave = start(csrf_of(&page)).await;
    let flow_cookie = leave.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(flow_cookie.starts_with("grantry_flow=") && flow_cookie.contains("Path=/oauth/callback"), "{flow_cookie}");
    assert!(flow_cookie.contains("HttpOnly") && flow_cookie.contains("SameSite=Lax"), "{flow_cookie}");
    let link = continue_link(&leave.text().await.unwrap());
    assert!(link.starts_with(&fake.base), "{link}");

    // Someone else's browser that got hold of the link cannot finish the flow.
    let stranger = visit(&browser(), &link).await;
    assert_eq!(stranger.status, 400, "{}", stranger.body);
    assert!(stranger.body.contains("another browser session"), "{}", stranger.body);
    assert!(fake.seen().is_empty(), "no code was exchanged");
    assert_eq!(s.get(&format!("/api/v1/authorizations/{id}")).await.body["status"], "unauthorized");

    // The person starts again and finishes in their own browser.
    fake.answer(Answer::json(json!({"access_token": "bound-access", "expires_in": 3600})));
    let page = person.get(format!("{}/ui/authorizations/{id}", s.base)).send().await.unwrap().text().await.unwrap();
    let link = continue_link(&start(csrf_of(&page)).await.text().await.unwrap());
    let back = person.get(&link).send().await.unwrap();
    assert_eq!(back.status(), 200, "the callback's page that moves on to the UI");
    assert_eq!(fake.seen().len(), 1, "one code exchange");
    assert_eq!(s.get(&format!("/api/v1/authorizations/{id}")).await.body["status"], "authorized");
    // A flow started through the API (no browser session) is not bound.
    let r = s
        .post(&format!("/api/v1/authorizations/{id}/authorize"), json!({"return_to": "https://app.example/done"}))
        .await;
    fake.answer(Answer::json(json!({"access_token": "api-access", "expires_in": 3600})));
    let landing = visit(&browser(), r.body["authorize_url"].as_str().unwrap()).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);
}
