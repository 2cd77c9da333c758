//! Authenticating callers: failed sign-ins and bearer requests are throttled (per forwarded
//! client only behind a trusted proxy), and an https public URL gives secure cookies and HSTS.

use reqwest::Method;
use serde_json::json;

use crate::harness::{slack_provider, Server, TOKEN};

use super::{action, header, no_redirects, sign_in};

#[tokio::test]
async fn ten_failed_sign_ins_throttle_sign_in_but_not_the_api() {
    let s = Server::start().await;
    let login = format!("{}/ui/login", s.base);
    for i in 0..10 {
        let r = no_redirects().post(&login).form(&[("token", format!("wrong-sign-in-{i}"))]).send().await.unwrap();
        assert_ne!(r.status().as_u16(), 429, "attempt {i} is still answered");
    }
    let (status, session, headers) = sign_in(&s, TOKEN).await;
    assert_eq!(status, 429, "even the right token waits");
    assert!(session.is_none());
    let retry: u64 = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=900).contains(&retry), "Retry-After: {retry}");
    let r = no_redirects().post(&login).form(&[("token", "wrong-again")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // Bearer requests are counted apart.
    assert_eq!(s.get("/api/v1/providers").await.status, 200);
}

#[tokio::test]
async fn ten_bearer_failures_throttle_every_bearer_request_but_not_sign_in() {
    let s = Server::start().await;
    for i in 0..10 {
        let r = s.request(Method::GET, "/api/v1/providers", None, Some(format!("wrong-bearer-{i}").as_str())).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "attempt {i}");
    }
    for token in [TOKEN, "wrong-bearer-again"] {
        let r = s.request_with(Method::GET, "/api/v1/providers", None, Some(token), &[]).await;
        assert_eq!((r.status, r.code()), (429, "too_many_requests"), "{}", r.text);
        let retry: u64 = header(&r, "retry-after").parse().unwrap_or(0);
        assert!((1..=900).contains(&retry), "Retry-After: {retry}");
    }
    assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200);
    // Sign-in is counted apart.
    let (status, session, _) = sign_in(&s, TOKEN).await;
    assert_eq!(status, 303);
    assert!(session.is_some());
}

#[tokio::test]
async fn an_https_public_url_gives_secure_cookies_and_hsts() {
    let s = Server::start_with(&[("GRANTRY_PUBLIC_URL", "https://grantry.example")]).await;
    let (status, session, headers) = sign_in(&s, TOKEN).await;
    assert_eq!(status, 303);
    assert!(session.is_some());
    let cookie = headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cookie.split(';').any(|part| part.trim().eq_ignore_ascii_case("secure")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let hsts = headers.get("strict-transport-security").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(hsts.contains("max-age="), "the sign-in answer: {hsts:?}");
    let r = s.request_with(Method::GET, "/api/v1/providers", None, Some(TOKEN), &[]).await;
    assert!(header(&r, "strict-transport-security").contains("max-age="), "an API answer: {:?}", r.headers);
    // Grantry's own https origin is a valid return address.
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "m", "provider": slack_provider(), "identifier": "i"}),
        )
        .await;
    let auth = s.create("authorizations", json!({"type": "oauth2", "name": "a", "client": client["id"]})).await;
    let r =
        s.post(&action(&auth, "authorize"), json!({"return_to": "https://grantry.example/ui/authorizations"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_for_the_forwarded_client_and_otherwise_the_header_is_ignored() {
    async fn failing(s: &Server, forwarded: String) -> u16 {
        let headers = [("X-Forwarded-For", forwarded.as_str())];
        s.request_with(Method::GET, "/api/v1/providers", None, Some("wrong"), &headers).await.status
    }
    // Without trusted proxies a caller cannot dodge the count by naming another address.
    let direct = Server::start().await;
    for i in 0..10 {
        assert_eq!(failing(&direct, format!("203.0.113.{i}")).await, 401);
    }
    assert_eq!(failing(&direct, "203.0.113.99".into()).await, 429);

    // Behind a trusted proxy, one client's failures shut out that client only.
    let proxied = Server::start_with(&[("GRANTRY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    for _ in 0..10 {
        assert_eq!(failing(&proxied, "198.51.100.7, 127.0.0.1".into()).await, 401);
    }
    assert_eq!(failing(&proxied, "198.51.100.7".into()).await, 429);
    let other = proxied
        .request_with(Method::GET, "/api/v1/providers", None, Some(TOKEN), &[("X-Forwarded-For", "198.51.100.8")])
        .await;
    assert_eq!(other.status, 200, "another client behind the same proxy still gets in");
}

#[tokio::test]
async fn behind_a_trusted_proxy_an_entry_that_is_no_address_ends_the_walk() {
    let s = Server::start_with(&[("GRANTRY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    // The caller puts a fresh address in front each time; the proxy appended `unknown`.
    for i in 0..10 {
        let forwarded = format!("203.0.113.{i}, unknown");
        let r = s
            .request_with(Method::GET, "/api/v1/providers", None, Some("wrong"), &[("X-Forwarded-For", &forwarded)])
            .await;
        assert_eq!(r.status, 401);
    }
    let r = s
        .request_with(
            Method::GET,
            "/api/v1/providers",
            None,
            Some(TOKEN),
            &[("X-Forwarded-For", "203.0.113.77, unknown")],
        )
        .await;
    assert_eq!(r.status, 429, "counted for the last trusted hop, not the caller's pick");
    // A port after the address is the address.
    let r = s
        .request_with(Method::GET, "/api/v1/providers", None, Some(TOKEN), &[("X-Forwarded-For", "198.51.100.9:4711")])
        .await;
    assert_eq!(r.status, 200);
}
