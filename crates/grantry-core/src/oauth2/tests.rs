#![allow(clippy::unwrap_used)]

use super::*;
use base64::Engine as _;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

fn provider(method: HttpMethod) -> ProviderSettings<'static> {
    ProviderSettings {
        authorization_endpoint: "https://{{shop}}.example.com/oauth/authorize?prompt=consent&state=evil",
        token_endpoint: "https://{{shop}}.example.com/oauth/token",
        token_method: method,
        scope_separator: ",",
        pkce: true,
        hosts: vec![HostParameter { key: "shop".into(), pattern: None }],
    }
}

fn vars() -> Vars {
    let mut v = Vars::default();
    v.set("shop", "acme").set("read", "all");
    v
}

fn response(status: u16, content_type: &str, body: &str) -> HttpResponse {
    HttpResponse { status, content_type: content_type.into(), body: body.as_bytes().to_vec() }
}

#[test]
fn the_authorize_url_keeps_the_endpoint_query_and_adds_every_parameter_in_order() {
    let scope = scope_string(
        &["chat:write".into(), "read {{read}}".into(), "chat:write".into(), "{{none}}".into()],
        ",",
        &vars(),
    )
    .unwrap();
    assert_eq!(scope, "chat:write,read all");
    let p = provider(HttpMethod::Post);
    let url = authorize_url(
        &AuthorizeRequest {
            provider: &p,
            client_id: "cid",
            redirect_uri: "http://127.0.0.1:8080/oauth/callback",
            scope: &scope,
            state: "st",
            code_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            extra: &[("team".into(), "T1".into()), ("redirect_uri".into(), "https://evil.example".into())],
        },
        &vars(),
    )
    .unwrap();
    // The RFC 7636 appendix B example verifier and challenge.
    assert_eq!(
        url,
        "https://acme.example.com/oauth/authorize?prompt=consent&response_type=code&client_id=cid\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fcallback&scope=chat%3Awrite%2Cread+all&state=st\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&team=T1"
    );
}

#[test]
fn token_requests_follow_the_method_and_client_authentication() {
    let p = provider(HttpMethod::Post);
    let grant = Grant::AuthorizationCode { code: "c0de", redirect_uri: "http://x/cb", code_verifier: Some("v") };
    let client = ClientAuth { method: AuthMethod::ClientSecretBasic, identifier: "id:1", secret: "s&2" };
    let extra = vec![("audience".to_owned(), "api".to_owned()), ("code".to_owned(), "ignored".to_owned())];
    let req = token_request(&p, &client, &grant, &extra, &[("X-Tenant".into(), "acme".into())], &vars()).unwrap();
    assert_eq!(req.url, "https://acme.example.com/oauth/token");
    let body = String::from_utf8(req.body.clone().unwrap()).unwrap();
    assert_eq!(
        body,
        "grant_type=authorization_code&code=c0de&redirect_uri=http%3A%2F%2Fx%2Fcb&code_verifier=v&audience=api"
    );
    let auth = req.headers.iter().find(|(k, _)| k == "Authorization").unwrap();
    // id "id:1" and secret "s&2", each form-encoded, then base64.
    assert_eq!(auth.1, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("id%3A1:s%262")));
    assert!(req.headers.contains(&("X-Tenant".into(), "acme".into())));
    assert!(!format!("{req:?}").contains("c0de"));

    let get = provider(HttpMethod::Get);
    let client = ClientAuth { method: AuthMethod::ClientSecretPost, identifier: "id", secret: "sec" };
    let req = token_request(&get, &client, &Grant::RefreshToken { refresh_token: "r1" }, &[], &[], &vars()).unwrap();
    assert!(req.body.is_none());
    assert_eq!(
        req.url,
        "https://acme.example.com/oauth/token?grant_type=refresh_token&refresh_token=r1&client_id=id&client_secret=sec"
    );
}

#[test]
fn token_answers_in_json_or_form_with_their_quirks_are_understood() {
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let t = parse_token_response(
        &response(200, "application/json", r#"{"access_token":"a","expires_in":"3600","scope":"x y"}"#),
        &STANDARD_POINTERS,
        now,
    )
    .unwrap();
    assert_eq!((t.access_token.expose_secret(), t.token_type.as_str()), ("a", "Bearer"));
    assert_eq!(t.expires_at.unwrap().unix_timestamp(), 1_700_003_600);
    assert_eq!(t.granted_scope.as_deref(), Some("x y"));
    let t = parse_token_response(
        &response(
            200,
            "application/x-www-form-urlencoded",
            "access_token=f&token_type=bearer&refresh_token=r&expires_in=60",
        ),
        &STANDARD_POINTERS,
        now,
    )
    .unwrap();
    assert_eq!((t.access_token.expose_secret(), t.refresh_token.as_ref().map(|r| r.expose_secret())), ("f", Some("r")));
    let t = parse_token_response(
        &response(200, "application/json", r#"{"access_token":"a","token_span":10,"created_at":1699999000}"#),
        &STANDARD_POINTERS,
        now,
    )
    .unwrap();
    assert_eq!(t.expires_at.unwrap().unix_timestamp(), 1_699_999_010);
    let e = parse_token_response(
        &response(
            200,
            "application/json",
            r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect"}"#,
        ),
        &STANDARD_POINTERS,
        now,
    )
    .err()
    .unwrap();
    assert_eq!(e.message(), "bad_verification_code: The code passed is incorrect");
    let e = parse_token_response(
        &response(400, "application/json", r#"{"error":"invalid_grant"}"#),
        &STANDARD_POINTERS,
        now,
    )
    .err()
    .unwrap();
    assert!(e.is_invalid_grant());
    let e = parse_token_response(&response(502, "text/html", "<html>bad gateway</html>"), &STANDARD_POINTERS, now)
        .err()
        .unwrap();
    assert_eq!(e.error, "server_error");
    let e =
        parse_token_response(&response(200, "application/json", r#"{"token_type":"bearer"}"#), &STANDARD_POINTERS, now)
            .err()
            .unwrap();
    assert_eq!(e.error, "invalid_response");
    let custom = Pointers {
        access_token: "/data/token",
        expires_in: "/data/ttl",
        refresh_token: "/data/refresh",
        token_type: "/data/type",
    };
    let t = parse_token_response(&response(200, "application/json", r#"{"data":{"token":"n","ttl":5}}"#), &custom, now)
        .unwrap();
    assert_eq!((t.access_token.expose_secret(), t.expires_at.unwrap().unix_timestamp()), ("n", 1_700_000_005));
}

#[test]
fn a_custom_refresh_request_renders_its_templates_into_form_or_json() {
    let mut v = vars();
    v.set("refresh_token", "rt-1");
    let spec = json!({"method": "POST", "url": "https://{{shop}}.example.com/refresh", "body_format": "json",
        "headers": [{"key": "X-Refresh", "value": "{{ refresh_token | base64_encode }}"}],
        "parameters": [{"key": "token", "value": "{{refresh_token}}"}]});
    let req = custom_refresh_request(&spec, &v, &[HostParameter { key: "shop".into(), pattern: None }]).unwrap();
    assert_eq!(req.url, "https://acme.example.com/refresh");
    assert_eq!(String::from_utf8(req.body.unwrap()).unwrap(), r#"{"token":"rt-1"}"#);
    assert!(req.headers.contains(&("X-Refresh".into(), "cnQtMQ==".into())));
}

#[test]
fn random_token_answers_never_panic_and_give_sane_expiries() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let keys = [
        "access_token",
        "expires_in",
        "token_span",
        "created_at",
        "token_type",
        "refresh_token",
        "scope",
        "error",
        "error_description",
        "error_uri",
        "id_token",
    ];
    let numbers =
        ["1e18", "-1", "1e308", "NaN", "inf", "9223372036854775807", "253402300799", "0", "3600", "1.5", "-0"];
    for _ in 0..5_000 {
        let mut body = Map::new();
        for key in keys {
            if rng.gen_bool(0.5) {
                continue;
            }
            let value = match rng.gen_range(0..8) {
                0 => Value::Null,
                1 => Value::Bool(rng.gen()),
                2 => json!(rng.gen::<i64>()),
                3 => json!(rng.gen::<f64>() * 10f64.powi(rng.gen_range(0..300))),
                4 => json!(numbers[rng.gen_range(0..numbers.len())]),
                5 => json!("x".repeat(rng.gen_range(0..600))),
                6 => json!({"nested": [1, 2]}),
                _ => json!(["a"]),
            };
            body.insert(key.to_owned(), value);
        }
        let status = [200u16, 201, 400, 401, 500, 503][rng.gen_range(0..6)];
        let content_type = ["application/json", "text/plain", ""][rng.gen_range(0..3)];
        let text =
            if rng.gen_bool(0.9) { Value::Object(body).to_string() } else { "access_token=a&expires_in=1e18".into() };
        match parse_token_response(&response(status, content_type, &text), &STANDARD_POINTERS, now) {
            Ok(t) => {
                assert!(!t.access_token.expose_secret().is_empty());
                assert!(t.expires_at.is_none_or(|e| e.year() <= 9999 && e >= now - MAX_CLOCK_SKEW));
            }
            Err(e) => {
                assert!(e.error.chars().count() <= MAX_ERROR);
                assert!(e.description.as_ref().is_none_or(|d| d.chars().count() <= MAX_ERROR_DESCRIPTION));
            }
        }
    }
}

#[test]
fn freshness_follows_expiry_margin_and_refreshability() {
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let margin = time::Duration::seconds(60);
    assert_eq!(freshness(None, now, margin, false), Freshness::Fresh);
    assert_eq!(freshness(Some(now + time::Duration::seconds(61)), now, margin, true), Freshness::Fresh);
    assert_eq!(freshness(Some(now + time::Duration::seconds(59)), now, margin, true), Freshness::Refresh);
    assert_eq!(freshness(Some(now + time::Duration::seconds(59)), now, margin, false), Freshness::Expiring);
    assert_eq!(freshness(Some(now - time::Duration::seconds(1)), now, margin, false), Freshness::Expired);
}
