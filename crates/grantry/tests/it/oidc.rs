//! OAuth 2.0 against a real provider: `oidc-provider` 8.8.1 from npm (see
//! tests/fixtures/oidc), driven over HTTP the way a browser drives its login
//! and consent pages.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{browser, Landing, Server};

pub struct Oidc {
    _child: Child,
    pub issuer: String,
}

impl Oidc {
    /// Starts the provider with Grantry's callback registered for its clients.
    pub async fn start(grantry: &Server) -> Oidc {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oidc");
        assert!(
            std::path::Path::new(dir).join("node_modules/oidc-provider").exists(),
            "run ./scripts/test (it installs the npm packages of {dir})"
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env("PORT", "0")
            .env("REDIRECT_URI", format!("{}/oauth/callback", grantry.base))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
        let issuer = line.strip_prefix("listening on ").expect("the provider's first line").to_owned();
        Oidc { _child: child, issuer }
    }

    /// The provider record for Grantry.
    pub fn provider(&self, auth_method: &str) -> Value {
        json!({
            "type": "oauth2", "namespace": "OIDC", "name": format!("oidc-{auth_method}"),
            "authorization_endpoint": format!("{}/auth", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "revocation_endpoint": format!("{}/token/revocation", self.issuer),
            "token_endpoint_auth_method": auth_method,
            "refresh_token_strategy": "default",
            "pkce": "s256"
        })
    }

    /// Asks the provider whether a token is active (RFC 7662).
    pub async fn introspect(&self, token: &str) -> Value {
        reqwest::Client::new()
            .post(format!("{}/token/introspection", self.issuer))
            .basic_auth("basic-client", Some("basic-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The action and hidden inputs of the page's form.
fn form(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| {
        let needle = format!("{name}=\"");
        tag.find(&needle).map(|i| {
            let rest = &tag[i + needle.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].replace("&amp;", "&")
        })
    };
    let form_tag = &html[html.find("<form").expect("a form on the page")..];
    let action = attr(&form_tag[..form_tag.find('>').unwrap()], "action").unwrap();
    let mut hidden = Vec::new();
    for piece in html.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
        if attr(tag, "type").as_deref() == Some("hidden") {
            hidden.push((attr(tag, "name").unwrap(), attr(tag, "value").unwrap_or_default()));
        }
    }
    (action, hidden)
}

async fn post_form(client: &reqwest::Client, html: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let (action, mut fields) = form(html);
    fields.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    client.post(action).form(&fields).send().await.unwrap()
}

async fn landing(response: reqwest::Response) -> Landing {
    let status = response.status().as_u16();
    let url = match response.headers().get("location") {
        Some(l) if status / 100 == 3 => l.to_str().unwrap().to_owned(),
        _ => response.url().to_string(),
    };
    Landing { url, status, body: response.text().await.unwrap_or_default() }
}

/// Signs in as alice and consents, like a person at the provider's pages.
async fn sign_in_and_consent(authorize_url: &str) -> Landing {
    let client = browser();
    let login = client.get(authorize_url).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("Sign-in"), "the login page: {login}");
    let consent = post_form(&client, &login, &[("login", "alice"), ("password", "any")]).await.text().await.unwrap();
    assert!(consent.contains("Authorize"), "the consent page: {consent}");
    landing(post_form(&client, &consent, &[]).await).await
}

struct Setup {
    s: Server,
    oidc: Oidc,
    auth: Value,
}

async fn setup(auth_method: &str, client_id: &str, secret: &str, grant_type: &str, scopes: &[&str]) -> Setup {
    let s = Server::start().await;
    let oidc = Oidc::start(&s).await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": client_id, "provider": oidc.provider(auth_method),
            "identifier": client_id, "secret": secret}),
        )
        .await;
    for scope in scopes {
        s.create("scopes", json!({"provider": client["provider"]["id"], "name": scope})).await;
    }
    let auth = s
        .create(
            "authorizations",
            json!({"type": "oauth2", "namespace": "Acme", "name": client_id, "client": client["id"],
            "scopes": scopes, "grant_type": grant_type}),
        )
        .await;
    Setup { s, oidc, auth }
}

impl Setup {
    fn path(&self, action: &str) -> String {
        format!("/api/v1/authorizations/{}/{action}", self.auth["id"].as_str().unwrap())
    }
    async fn authorize_url(&self) -> String {
        let r = self.s.post(&self.path("authorize"), json!({"return_to": "https://app.example/done"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["authorize_url"].as_str().unwrap().to_owned()
    }
    async fn record(&self) -> Value {
        self.s.get(&format!("/api/v1/authorizations/{}", self.auth["id"].as_str().unwrap())).await.body
    }
    async fn access_token(&self) -> String {
        let r = self.s.get(&self.path("token")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_and_client_secret_basic() {
    let t = setup("client_secret_basic", "basic-client", "basic-secret", "authorization_code", &["openid", "api:read"])
        .await;
    let url = t.authorize_url().await;
    assert!(url.contains("code_challenge_method=S256") && url.contains("scope=openid+api%3Aread"), "{url}");
    let landed = sign_in_and_consent(&url).await;
    assert_eq!(landed.param("status").as_deref(), Some("authorized"), "{}", landed.url);
    assert!(landed.url.starts_with("https://app.example/done?authorization="));
    let record = t.record().await;
    assert_eq!(record["status"], "authorized");
    assert_eq!(record["token_type"], "Bearer");
    assert_eq!(record["granted_scope"], "openid api:read");
    assert!(record["expires_at"].is_string() && record["authorized_at"].is_string());
    assert_eq!(
        record["secrets"],
        json!({"access_token": true, "refresh_token": true, "id_token": true, "token_response": true})
    );
    let token = t.access_token().await;
    let info = t.oidc.introspect(&token).await;
    assert_eq!(
        (info["active"].as_bool(), info["client_id"].as_str(), info["sub"].as_str()),
        (Some(true), Some("basic-client"), Some("alice"))
    );
    assert_eq!(info["scope"], "openid api:read");
    // No secret reached a response.
    let seen = t.s.seen.lock().unwrap().join("\n");
    assert!(!seen.contains("basic-secret"));
}

#[tokio::test]
async fn authorization_code_with_client_secret_post() {
    let t = setup("client_secret_post", "post-client", "post-secret", "authorization_code", &["api:read"]).await;
    let landed = sign_in_and_consent(&t.authorize_url().await).await;
    assert_eq!(landed.param("status").as_deref(), Some("authorized"), "{}", landed.url);
    let info = t.oidc.introspect(&t.access_token().await).await;
    assert_eq!((info["active"].as_bool(), info["client_id"].as_str()), (Some(true), Some("post-client")));
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_keeps_working() {
    let t = setup("client_secret_basic", "basic-client", "basic-secret", "authorization_code", &["api:read"]).await;
    sign_in_and_consent(&t.authorize_url().await).await;
    let first = t.access_token().await;
    // The provider rotates refresh tokens and kills the grant when an old one is
    // reused: two refreshes in a row only work if Grantry stored each new one.
    for _ in 0..2 {
        let r = t.s.post(&t.path("refresh"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "authorized");
    }
    let third = t.access_token().await;
    assert_ne!(first, third);
    assert_eq!(t.oidc.introspect(&third).await["active"], true);
    assert!(
        t.s.get(&format!("/api/v1/notifications?authorization={}", t.auth["id"].as_str().unwrap())).await.body["total"]
            == 0
    );
}

#[tokio::test]
async fn the_client_credentials_grant_needs_no_browser() {
    let t = setup("client_secret_basic", "cc-client", "cc-secret", "client_credentials", &["api:read"]).await;
    let r = t.s.post(&t.path("authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "authorized", "{}", r.text);
    assert_eq!(r.body["granted_scope"], "api:read");
    let info = t.oidc.introspect(&t.access_token().await).await;
    assert_eq!((info["active"].as_bool(), info["client_id"].as_str()), (Some(true), Some("cc-client")));
    // A refresh of a client credentials grant asks for a new token the same way.
    let r = t.s.post(&t.path("refresh"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn cancel_revokes_the_grant_at_the_provider() {
    let t = setup("client_secret_basic", "basic-client", "basic-secret", "authorization_code", &["api:read"]).await;
    sign_in_and_consent(&t.authorize_url().await).await;
    let token = t.access_token().await;
    assert_eq!(t.oidc.introspect(&token).await["active"], true);
    let r = t.s.post(&t.path("cancel"), json!({})).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("unauthorized")), "{}", r.text);
    assert_eq!(t.oidc.introspect(&token).await["active"], false, "revoking the refresh token ends the grant");
    let r = t.s.get(&t.path("token")).await;
    assert_eq!((r.status, r.code()), (409, "not_authorized"));
}

#[tokio::test]
async fn a_user_who_denies_access_leaves_the_authorization_unauthorized_with_the_reason() {
    let t = setup("client_secret_basic", "basic-client", "basic-secret", "authorization_code", &["api:read"]).await;
    let client = browser();
    let page = client.get(t.authorize_url().await).send().await.unwrap();
    let interaction = page.url().to_string();
    assert!(interaction.contains("/interaction/"), "{interaction}");
    // The login page's "Cancel" link.
    let landed = landing(client.get(format!("{interaction}/abort")).send().await.unwrap()).await;
    assert_eq!(landed.param("status").as_deref(), Some("failed"), "{}", landed.url);
    assert_eq!(landed.param("error").as_deref(), Some("access_denied: End-User aborted interaction"));
    let record = t.record().await;
    assert_eq!(record["status"], "unauthorized");
    assert_eq!(record["last_error"]["error"], "access_denied");
    let notes =
        t.s.get(&format!("/api/v1/notifications?authorization={}&level=error", t.auth["id"].as_str().unwrap())).await;
    assert!(notes.body["items"][0]["message"].as_str().unwrap().contains("access_denied"), "{}", notes.text);
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let t = setup("client_secret_post", "post-client", "post-secret", "authorization_code", &["api:read"]).await;
    // A browser that stops at Grantry's callback, to keep its URL.
    let grantry_host = url::Url::parse(&t.s.base).unwrap().port();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(move |a| {
            if a.url().path() == "/oauth/callback" && a.url().port() == grantry_host {
                a.stop()
            } else {
                a.follow()
            }
        }))
        .build()
        .unwrap();
    let login = client.get(t.authorize_url().await).send().await.unwrap().text().await.unwrap();
    let consent = post_form(&client, &login, &[("login", "alice"), ("password", "x")]).await.text().await.unwrap();
    let callback = landing(post_form(&client, &consent, &[]).await).await.url;
    assert!(callback.contains("/oauth/callback?code="), "{callback}");
    let first = landing(browser().get(&callback).send().await.unwrap()).await;
    assert_eq!(first.param("status").as_deref(), Some("authorized"), "{}", first.url);
    let before = t.record().await;
    let again = browser().get(&callback).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("already used"));
    assert_eq!(t.record().await, before);
}

#[tokio::test]
async fn the_proxy_refreshes_once_when_the_remote_api_answers_401() {
    let t = setup("client_secret_basic", "basic-client", "basic-secret", "authorization_code", &["openid", "api:read"])
        .await;
    sign_in_and_consent(&t.authorize_url().await).await;
    // The provider's own userinfo endpoint is the protected API.
    let connection =
        t.s.create("connections", json!({"name": "userinfo", "url": t.oidc.issuer, "authorization": t.auth["id"]}))
            .await;
    let proxy = format!("/api/v1/connections/{}/proxy/me", connection["id"].as_str().unwrap());
    let me = t.s.get(&proxy).await;
    assert_eq!((me.status, me.body["sub"].as_str()), (200, Some("alice")), "{}", me.text);

    // The access token dies at the provider while Grantry still thinks it fresh.
    let old = t.access_token().await;
    let revoked = reqwest::Client::new()
        .post(format!("{}/token/revocation", t.oidc.issuer))
        .basic_auth("basic-client", Some("basic-secret"))
        .form(&[("token", old.as_str()), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(t.oidc.introspect(&old).await["active"], false);

    let me = t.s.get(&proxy).await;
    assert_eq!((me.status, me.body["sub"].as_str()), (200, Some("alice")), "401, refresh, retry: {}", me.text);
    let new = t.access_token().await;
    assert_ne!(new, old);
    assert_eq!(t.oidc.introspect(&new).await["active"], true);
}
