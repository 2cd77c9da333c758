//! OAuth 1.0a, Basic, API key and generic authorizations end to end against a
//! provider and protected API built on Python's oauthlib (tests/fixtures/oauth1),
//! used through `sign` and through the connection proxy.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{browser, visit, Server, TOKEN};
use crate::oauth1_oracle::python;

pub struct OAuth1Provider {
    _child: Child,
    pub base: String,
}

impl OAuth1Provider {
    pub async fn start(grantry: &Server) -> OAuth1Provider {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oauth1/provider.py");
        let mut child = Command::new(python())
            .arg(script)
            .env("PORT", "0")
            .env("CALLBACK_URI", format!("{}/oauth/callback", grantry.base))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the test virtualenv (./scripts/test makes it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
        OAuth1Provider { _child: child, base: line.strip_prefix("listening on ").unwrap().to_owned() }
    }

    pub fn provider(&self, signature_method: &str) -> Value {
        json!({
            "type": "oauth1", "namespace": "Books", "name": format!("books-{signature_method}"),
            "request_token_endpoint": format!("{}/oauth/request_token", self.base),
            "authorization_endpoint": format!("{}/oauth/authorize", self.base),
            "token_endpoint": format!("{}/oauth/access_token", self.base),
            "signature_method": signature_method
        })
    }
}

fn id(record: &Value) -> &str {
    record["id"].as_str().unwrap()
}

/// Sends what `sign` answered to the protected API.
async fn send_signed(s: &Server, auth: &Value, method: &str, url: &str, form: Option<&str>) -> (u16, Value) {
    let mut request = json!({"method": method, "url": url});
    if let Some(body) = form {
        request["body"] = json!(body);
        request["headers"] = json!({"Content-Type": "application/x-www-form-urlencoded"});
    }
    let signed = s.post(&format!("/api/v1/authorizations/{}/sign", id(auth)), request).await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let mut target = url::Url::parse(url).unwrap();
    for (k, v) in signed.body["query"].as_object().unwrap() {
        target.query_pairs_mut().append_pair(k, v.as_str().unwrap());
    }
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), target);
    for (k, v) in signed.body["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    if let Some(body) = form {
        req = req.header("Content-Type", "application/x-www-form-urlencoded").body(body.to_owned());
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn proxy(s: &Server, connection: &Value, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}/api/v1/connections/{}/proxy/{path}", s.base, id(connection)))
        .bearer_auth(TOKEN)
        .header("X-Caller", "integration")
        .header("Connection", "keep-alive");
    if let Some(body) = body {
        req = req.header("Content-Type", "application/x-www-form-urlencoded").body(body.to_owned());
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_three_legged_flow_then_signed_and_proxied_requests_with_every_signature_method() {
    let s = Server::start().await;
    let p = OAuth1Provider::start(&s).await;
    for method in ["HMAC-SHA1", "HMAC-SHA256", "PLAINTEXT"] {
        let client = s
            .create(
                "clients",
                json!({"type": "remote_oauth", "name": "books", "provider": p.provider(method),
                "identifier": "grantry-consumer-key-0001", "secret": "grantry-consumer-secret"}),
            )
            .await;
        let auth = s.create("authorizations", json!({"type": "oauth1", "namespace": "Acme", "name": format!("books-{method}"), "client": client["id"]})).await;
        let r = s
            .post(
                &format!("/api/v1/authorizations/{}/authorize", id(&auth)),
                json!({"return_to": "https://app.example/done"}),
            )
            .await;
        assert_eq!(r.status, 200, "{method}: {}", r.text);
        let url = r.body["authorize_url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&format!("{}/oauth/authorize?oauth_token=", p.base)), "{url}");
        let landing = visit(&browser(), &url).await;
        assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{method}: {}", landing.url);
        let record = s.get(&format!("/api/v1/authorizations/{}", id(&auth))).await.body;
        assert_eq!(record["realm_id"], "4620816365");
        for _ in 0..2 {
            let token = s.get(&format!("/api/v1/authorizations/{}/token", id(&auth))).await;
            assert_eq!((token.status, token.code()), (409, "not_supported"), "an OAuth 1.0a token is no bearer token");
        }
        assert_eq!(record["secrets"], json!({"access_token": true, "access_token_secret": true}));

        let (status, body) =
            send_signed(&s, &auth, "GET", &format!("{}/api/oauth1/items?limit=10&q=a%20b", p.base), None).await;
        assert_eq!((status, body["auth"].as_str()), (200, Some("oauth1")), "{method}: {body}");
        assert_eq!(body["query"]["limit"], "10");
        let (status, body) =
            send_signed(&s, &auth, "POST", &format!("{}/api/oauth1/items", p.base), Some("name=new+item&n=1")).await;
        assert_eq!(status, 200, "{method}: {body}");

        let connection = s
            .create(
                "connections",
                json!({"namespace": "Acme", "name": format!("books-{method}"),
            "url": format!("{}/api", p.base), "authorization": auth["id"]}),
            )
            .await;
        let (status, body) = proxy(&s, &connection, "GET", "oauth1/items?limit=5", None).await;
        assert_eq!((status, body["auth"].as_str()), (200, Some("oauth1")), "{method}: {body}");
        assert_eq!(body["query"]["limit"], "5");
        let (status, body) = proxy(&s, &connection, "POST", "oauth1/items", Some("name=proxied")).await;
        assert_eq!(status, 200, "{method}: {body}");
        assert_eq!(body["body"], "name=proxied");
    }
}

#[tokio::test]
async fn a_denied_oauth1_grant_is_recorded() {
    let s = Server::start().await;
    let p = OAuth1Provider::start(&s).await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "books", "provider": p.provider("HMAC-SHA1"),
        "identifier": "grantry-consumer-key-0001", "secret": "grantry-consumer-secret"}),
        )
        .await;
    let auth = s.create("authorizations", json!({"type": "oauth1", "name": "denied", "client": client["id"]})).await;
    let r = s
        .post(
            &format!("/api/v1/authorizations/{}/authorize", id(&auth)),
            json!({"return_to": "https://app.example/done"}),
        )
        .await;
    let url = format!("{}&deny=1", r.body["authorize_url"].as_str().unwrap());
    let landing = visit(&browser(), &url).await;
    assert_eq!(landing.param("status").as_deref(), Some("failed"), "{}", landing.url);
    let record = s.get(&format!("/api/v1/authorizations/{}", id(&auth))).await.body;
    assert_eq!(
        (record["status"].as_str(), record["last_error"]["error"].as_str()),
        (Some("unauthorized"), Some("access_denied"))
    );
    // A wrong consumer secret is refused at the request token call.
    s.patch(&format!("/api/v1/clients/{}", id(&client)), json!({"secret": "wrong"})).await;
    let r = s.post(&format!("/api/v1/authorizations/{}/authorize", id(&auth)), json!({})).await;
    assert_eq!((r.status, r.code()), (409, "authorization_failed"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("signature_invalid"), "{}", r.text);
}

#[tokio::test]
async fn basic_and_api_keys_through_sign_and_the_proxy() {
    let s = Server::start().await;
    let p = OAuth1Provider::start(&s).await;
    let basic = s
        .create(
            "authorizations",
            json!({"type": "basic", "name": "b", "username": "api-user", "password": "api-pass-%&:ü"}),
        )
        .await;
    let header = s
        .create(
            "authorizations",
            json!({"type": "api_key", "name": "h", "key_name": "X-Api-Key", "key_value": "key-123-abc"}),
        )
        .await;
    let query = s.create("authorizations", json!({"type": "api_key", "name": "q", "key_name": "api_key", "key_value": "key-123-abc", "placement": "query"})).await;
    for (auth, path, expected) in [
        (&basic, "basic/x", "basic"),
        (&header, "key/header/x", "api-key-header"),
        (&query, "key/query/x", "api-key-query"),
    ] {
        let (status, body) = send_signed(&s, auth, "GET", &format!("{}/api/{path}?a=1", p.base), None).await;
        assert_eq!((status, body["auth"].as_str()), (200, Some(expected)), "{body}");
        let connection = s
            .create(
                "connections",
                json!({"name": format!("c-{expected}"), "url": format!("{}/api", p.base), "authorization": auth["id"]}),
            )
            .await;
        let (status, body) = proxy(&s, &connection, "GET", &format!("{path}?a=1"), None).await;
        assert_eq!((status, body["auth"].as_str()), (200, Some(expected)), "{body}");
    }

    // With authorization_handler on, the connection's own templates carry the credentials.
    let templated = s
        .create(
            "connections",
            json!({"name": "templated", "url": format!("{}/api", p.base), "authorization": basic["id"],
            "authorization_handler": true, "headers": [{"key": "Authorization", "value": "Basic {{basic_auth}}"}]}),
        )
        .await;
    let (status, body) = proxy(&s, &templated, "GET", "basic/y", None).await;
    assert_eq!((status, body["auth"].as_str()), (200, Some("basic")), "{body}");
    let keyed = s
        .create(
            "connections",
            json!({"name": "keyed", "url": format!("{}/api", p.base), "authorization": query["id"],
            "authorization_handler": true, "parameters": [{"key": "api_key", "value": "{{key_value}}"}]}),
        )
        .await;
    assert_eq!(proxy(&s, &keyed, "GET", "key/query/z", None).await.0, 200);

    // What the proxy forwards: the caller's headers and body, the connection's
    // headers and parameters; never the caller's Authorization or hop-by-hop headers.
    let echo = s
        .create(
            "connections",
            json!({"name": "echo", "url": format!("{}/api/echo", p.base),
            "headers": [{"key": "X-Tenant", "value": "{{tenant}}"}], "parameters": [{"key": "v", "value": "2"}],
            "template_parameters": [{"key": "tenant", "value": "acme"}]}),
        )
        .await;
    let (status, body) = proxy(&s, &echo, "PUT", "deep/path%20x?limit=3", Some("k=v")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/api/echo/deep/path%20x");
    assert_eq!((body["query"]["limit"].as_str(), body["query"]["v"].as_str()), (Some("3"), Some("2")));
    assert_eq!(body["body"], "k=v");
    let headers = &body["headers"];
    assert_eq!((headers["x-caller"].as_str(), headers["x-tenant"].as_str()), (Some("integration"), Some("acme")));
    assert!(headers.get("authorization").is_none(), "the caller's token must not be forwarded: {headers}");
    assert!(!headers.to_string().contains(TOKEN));

    // A refused request leaves no secret in the answer, and none reaches the log or a notification.
    let wrong = s
        .create(
            "authorizations",
            json!({"type": "basic", "name": "wrong", "username": "api-user", "password": "not-the-pass-77"}),
        )
        .await;
    let refused = s
        .create(
            "connections",
            json!({"name": "refused", "url": format!("{}/api", p.base), "authorization": wrong["id"]}),
        )
        .await;
    let (status, body) = proxy(&s, &refused, "GET", "basic/x", None).await;
    assert_eq!(status, 401, "the remote status is passed through: {body}");
    let notes = s.get("/api/v1/notifications?per_page=100").await;
    let seen = s.seen.lock().unwrap().join("\n");
    let log = s.log_text();
    for secret in ["api-pass-%&:ü", "not-the-pass-77", "key-123-abc", "YXBpLXVzZXI6YXBpLXBhc3Mt"] {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(!notes.text.contains(secret), "{secret} in a notification");
        // `sign` hands API keys and Basic headers out by design (and the remote API
        // echoes what it got); a raw password is never in a response.
        if secret.contains("pass") {
            assert!(!seen.contains(secret), "{secret} in a response");
        }
    }
}

#[tokio::test]
async fn a_connection_may_not_set_what_its_authorization_sets() {
    let s = Server::start().await;
    let basic =
        s.create("authorizations", json!({"type": "basic", "name": "b", "username": "u", "password": "p"})).await;
    let key = s
        .create(
            "authorizations",
            json!({"type": "api_key", "name": "k", "key_name": "api_key", "key_value": "v", "placement": "query"}),
        )
        .await;
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "c", "url": "https://api.example", "authorization": basic["id"],
            "headers": [{"key": "X-Ok", "value": "1"}, {"key": "authorization", "value": "Bearer mine"}]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.field_errors("headers[1].key"),
        ["`authorization` is set by authorization b itself; remove it here or turn authorization_handler on"]
    );
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "c", "url": "https://api.example", "authorization": key["id"],
            "parameters": [{"key": "api_key", "value": "x"}]}),
        )
        .await;
    assert!(r.field_errors("parameters[0].key")[0].contains("is set by authorization k"), "{}", r.text);
    let r = s
        .post("/api/v1/connections", json!({"name": "c", "url": "https://api.example", "authorization": key["id"], "authorization_handler": "yes"}))
        .await;
    assert_eq!(r.field_errors("authorization_handler"), ["must be true or false, not a string"]);
    let ok = s
        .create(
            "connections",
            json!({"name": "c", "url": "https://api.example", "authorization": key["id"], "authorization_handler": true,
            "parameters": [{"key": "api_key", "value": "{{key_value}}"}]}),
        )
        .await;
    assert_eq!(ok["authorization"]["name"], "k");
    // The authorization cannot be deleted while a connection uses it.
    let r = s.delete(&format!("/api/v1/authorizations/{}", id(&key))).await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
    assert!(s.get("/api/v1/connections/schema").await.body["properties"]["authorization_handler"].is_object());
}

#[tokio::test]
async fn a_generic_authorization_captures_callback_parameters() {
    let s = Server::start().await;
    let p = OAuth1Provider::start(&s).await;
    // The echo API stands in for a provider's consent page: the test follows the
    // callback URL Grantry put into the authorize URL, adding what a provider would.
    let client = s
        .create(
            "clients",
            json!({"type": "generic", "name": "g", "provider": {"type": "generic", "namespace": "G", "name": "Generic",
            "authorization_endpoint": format!("{}/api/echo/consent", p.base)}}),
        )
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "generic", "name": "gen", "client": client["id"], "callback_key": "return_url",
            "capture": ["shop_id", "instance"], "parameters": [{"key": "state", "value": "{{callback_token}}"}]}),
        )
        .await;
    let r = s
        .post(
            &format!("/api/v1/authorizations/{}/authorize", id(&auth)),
            json!({"return_to": "https://app.example/done"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = url::Url::parse(r.body["authorize_url"].as_str().unwrap()).unwrap();
    let param = |k: &str| url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned()).unwrap();
    let callback = param("return_url");
    assert!(callback.starts_with(&format!("{}/oauth/callback/", s.base)), "{callback}");
    assert!(callback.ends_with(&param("state")), "{{callback_token}} is the state in the callback URL");
    let landing = visit(&browser(), &format!("{callback}?shop_id=42&instance=eu-1&ignored=x")).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);
    let record = s.get(&format!("/api/v1/authorizations/{}", id(&auth))).await.body;
    assert_eq!(record["status"], "authorized");
    // The captured values are sealed like any secret: shown as set, never as values.
    assert_eq!(record["secrets"]["captured"], true, "{record}");
    assert_eq!(record["template_parameters"], json!([]));
    assert!(!record.to_string().contains("eu-1"));
    // Used once.
    let again = visit(&browser(), &format!("{callback}?shop_id=1")).await;
    assert_eq!(again.status, 400);
}
