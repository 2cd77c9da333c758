//! Where requests go: hosts are templated only through declared host parameters, values are
//! percent-encoded, and loopback, private and metadata addresses and proxy variables are no way out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::fake_provider::FakeProvider;
use crate::harness::Server;

use super::{
    action, authorize, id, oauth2_authorization, proxy_path, query_values, record, Echo, CLIENT_ID, CLIENT_SECRET,
};

/// A listener that stands where HTTP_PROXY points and counts who connects.
async fn proxy_trap() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ =
                stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    });
    (url, hits)
}

#[tokio::test]
async fn a_host_may_be_templated_only_through_a_declared_host_parameter_with_a_matching_value() {
    let s = Server::start().await;
    let shopify = json!({"type": "oauth2", "namespace": "Shopify", "name": "Shopify",
        "authorization_endpoint": "https://{{shop}}.myshopify.com/admin/oauth/authorize",
        "token_endpoint": "https://{{shop}}.myshopify.com/admin/oauth/access_token"});
    let r = s.post("/api/v1/providers", shopify.clone()).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(!r.field_errors("authorization_endpoint").is_empty(), "{}", r.text);
    assert_eq!(s.count("providers").await, 0);

    let mut declared = shopify;
    declared["host_parameters"] = json!([{"key": "shop", "pattern": "^[a-z]+$"}]);
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "app", "provider": declared, "identifier": CLIENT_ID, "secret": CLIENT_SECRET}),
        )
        .await;
    let auth = s.create("authorizations", json!({"type": "oauth2", "name": "store", "client": client["id"]})).await;
    let path = format!("/api/v1/authorizations/{}", id(&auth));
    for shop in ["evil.example/x?", "evil.example#", "evil.example", "acme@evil.example", "acme1", ""] {
        let r = s.patch(&path, json!({"template_parameters": [{"key": "shop", "value": shop}]})).await;
        assert_eq!(r.status, 200, "{shop}: {}", r.text);
        let r = s.post(&action(&auth, "authorize"), json!({})).await;
        assert_eq!((r.status, r.code()), (409, "provider_misconfigured"), "shop = {shop:?}: {}", r.text);
    }
    s.patch(&path, json!({"template_parameters": [{"key": "shop", "value": "acme"}]})).await;
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = url::Url::parse(r.body["authorize_url"].as_str().unwrap()).unwrap();
    assert_eq!((url.host_str(), url.path()), (Some("acme.myshopify.com"), "/admin/oauth/authorize"));
}

#[tokio::test]
async fn values_in_urls_are_percent_encoded_and_parameters_may_not_set_keys_grantry_owns() {
    let s = Server::start().await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "enc", "identifier": CLIENT_ID, "secret": CLIENT_SECRET,
            "provider": {"type": "oauth2", "namespace": "Enc", "name": "Enc",
                "authorization_endpoint": "https://auth.example/{{p}}/authorize", "token_endpoint": "https://auth.example/token"}}),
        )
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "oauth2", "name": "enc", "client": client["id"],
            "template_parameters": [{"key": "p", "value": "a/b?c#d"}],
            "parameters": [{"key": "team", "value": "T1&redirect_uri=https://evil.example/cb"}]}),
        )
        .await;
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.body["authorize_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://auth.example/a%2Fb%3Fc%23d/authorize?"), "{url}");
    // Grantry's own parameters appear once each, with Grantry's values.
    assert_eq!(query_values(&url, "redirect_uri"), [format!("{}/oauth/callback", s.base)], "{url}");
    assert_eq!(query_values(&url, "state").len(), 1, "{url}");
    assert_eq!(query_values(&url, "code_challenge_method"), ["S256"], "{url}");
    assert_eq!(query_values(&url, "response_type"), ["code"], "{url}");
    assert_eq!(query_values(&url, "client_id"), [CLIENT_ID], "{url}");
    assert_eq!(query_values(&url, "team"), ["T1&redirect_uri=https://evil.example/cb"], "{url}");

    for key in [
        "redirect_uri",
        "state",
        "code_challenge_method",
        "code_challenge",
        "response_type",
        "client_id",
        "scope",
        "client_secret",
    ] {
        let r = s
            .post(
                "/api/v1/authorizations",
                json!({"type": "oauth2", "name": "inject", "client": client["id"],
                "parameters": [{"key": key, "value": "plain"}]}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{key}: {}", r.text);
        assert!(r.field_errors("parameters[0].key").iter().any(|m| m.contains(key)), "{key}: {}", r.text);
    }
    for key in ["redirect_uri", "grant_type", "code_verifier", "client_assertion", "refresh_token"] {
        let r = s
            .patch(
                &format!("/api/v1/clients/{}", id(&client)),
                json!({"request_token_parameters": [{"key": key, "value": "https://evil.example/cb"}]}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{key}: {}", r.text);
        assert!(r.field_errors("request_token_parameters[0].key").iter().any(|m| m.contains(key)), "{key}: {}", r.text);
    }
    assert_eq!(s.count("authorizations").await, 1);
}

#[tokio::test]
async fn loopback_is_refused_unless_the_allow_list_names_it() {
    let fake = FakeProvider::start().await;
    let echo = Echo::start().await;
    // An empty allow-list is the product's default (the harness allows loopback for its fakes).
    let s = Server::start_with(&[("GRANTRY_ALLOWED_NETWORKS", "")]).await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    let landing = authorize(&s, &auth).await;
    assert_eq!(landing.param("status").as_deref(), Some("failed"), "{}", landing.url);
    assert!(fake.seen().is_empty(), "the code exchange did not reach the loopback provider");
    let rec = record(&s, &auth).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(rec["secrets"]["access_token"], false);

    for (i, url) in [
        format!("{}/api", echo.base),
        format!("http://localhost:{}/api", echo.port()),
        format!("http://[::1]:{}/api", echo.port()),
        format!("http://127.1.2.3:{}/api", echo.port()),
    ]
    .iter()
    .enumerate()
    {
        let connection = s.create("connections", json!({"name": format!("loop-{i}"), "url": url})).await;
        let r = s.get(&proxy_path(&connection, "x")).await;
        assert_eq!((r.status, r.code()), (409, "destination_refused"), "{url}: {}", r.text);
    }
    assert!(echo.seen().is_empty());

    // Named in the allow-list, the same provider works.
    let allowed = Server::start_with(&[("GRANTRY_ALLOWED_NETWORKS", "127.0.0.0/8")]).await;
    let auth = oauth2_authorization(&allowed, &fake, json!({})).await;
    assert_eq!(authorize(&allowed, &auth).await.param("status").as_deref(), Some("authorized"));
    assert_eq!(fake.seen().len(), 1);
}

async fn assert_refused(s: &Server, urls: &[&str], what: &str) {
    for (i, url) in urls.iter().enumerate() {
        let connection = s.create("connections", json!({"name": format!("{what}-{i}"), "url": url})).await;
        let r = s.get(&proxy_path(&connection, "latest/meta-data")).await;
        assert_eq!((r.status, r.code()), (409, "destination_refused"), "{what} {url}: {}", r.text);
    }
}

#[tokio::test]
async fn private_addresses_are_refused_by_default_and_metadata_and_special_ones_even_when_allowed() {
    let echo = Echo::start().await;
    // A one-second timeout makes a wrongly allowed address fail fast instead of hanging the test.
    let s = Server::start_with(&[("GRANTRY_HTTP_TIMEOUT", "1")]).await;
    let private = [
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://198.18.0.1/",
        "http://[fd12::1]/",
        "http://[fec0::1]/",
    ];
    assert_refused(&s, &private, "private").await;

    let open =
        Server::start_with(&[("GRANTRY_ALLOWED_NETWORKS", "0.0.0.0/0,::/0"), ("GRANTRY_HTTP_TIMEOUT", "1")]).await;
    let special = [
        "http://169.254.169.254/",
        "http://169.254.0.1/",
        "http://100.100.100.200/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        // 169.254.169.254 written as one number and in hex.
        "http://2852039166/",
        "http://0xa9fea9fe/",
        // IPv6 forms that embed the metadata address: mapped, compatible, NAT64, 6to4.
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:100.100.100.200]/",
        "http://[::169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://[::]/",
    ];
    assert_refused(&open, &special, "special").await;
    // The wide allow-list itself works: loopback is now allowed.
    let connection = open.create("connections", json!({"name": "echo", "url": format!("{}/api", echo.base)})).await;
    assert_eq!(open.get(&proxy_path(&connection, "x")).await.status, 200);
    assert_eq!(echo.seen().len(), 1);
}

#[tokio::test]
async fn proxy_environment_variables_do_not_change_where_requests_go() {
    let fake = FakeProvider::start().await;
    let echo = Echo::start().await;
    let (trap, hits) = proxy_trap().await;
    let t = trap.as_str();
    let env = [
        ("HTTP_PROXY", t),
        ("HTTPS_PROXY", t),
        ("ALL_PROXY", t),
        ("http_proxy", t),
        ("https_proxy", t),
        ("all_proxy", t),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    let s = Server::start_with(&env).await;
    let connection = s.create("connections", json!({"name": "echo", "url": format!("{}/api", echo.base)})).await;
    let r = s.get(&proxy_path(&connection, "x")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(echo.seen().len(), 1, "the request went straight to the remote API");
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    assert_eq!(authorize(&s, &auth).await.param("status").as_deref(), Some("authorized"));
    assert_eq!(fake.seen().len(), 1);

    // With nothing allowed, a host name is still judged by the address it resolves to.
    let mut closed_env = env.to_vec();
    closed_env.push(("GRANTRY_ALLOWED_NETWORKS", ""));
    let closed = Server::start_with(&closed_env).await;
    let connection = closed
        .create("connections", json!({"name": "named", "url": format!("http://localhost:{}/api", echo.port())}))
        .await;
    let r = closed.get(&proxy_path(&connection, "x")).await;
    assert_eq!((r.status, r.code()), (409, "destination_refused"), "{}", r.text);
    assert_eq!(echo.seen().len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing went through the proxy of the environment");
}

#[tokio::test]
async fn authorize_urls_must_be_http_or_https() {
    let s = Server::start().await;
    for (i, (kind, endpoint)) in [
        ("generic", "javascript:alert(document.domain)"),
        ("generic", "JavaScript:alert(1)"),
        ("generic", "data:text/html,<script>alert(1)</script>"),
        ("oauth1", "javascript:alert(1)"),
        ("oauth2", "javascript:alert(1)"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut provider = json!({"type": kind, "namespace": "Js", "name": format!("{kind}-{i}"),
            "authorization_endpoint": endpoint});
        if kind != "generic" {
            provider["token_endpoint"] = json!("https://auth.example/token");
        }
        if kind == "oauth1" {
            provider["request_token_endpoint"] = json!("https://auth.example/request");
        }
        let r = s.post("/api/v1/providers", provider).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{kind} {endpoint}: {}", r.text);
        assert!(!r.field_errors("authorization_endpoint").is_empty(), "{kind} {endpoint}: {}", r.text);
    }
    assert_eq!(s.count("providers").await, 0);
    let ok = s
        .create(
            "providers",
            json!({"type": "generic", "namespace": "Js", "name": "ok", "authorization_endpoint": "https://consent.example/start"}),
        )
        .await;
    let path = format!("/api/v1/providers/{}", id(&ok));
    let r = s.patch(&path, json!({"authorization_endpoint": "javascript:alert(1)"})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert_eq!(s.get(&path).await.body["authorization_endpoint"], "https://consent.example/start");
}
