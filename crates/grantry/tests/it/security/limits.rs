//! Budgets and limits: template bombs and slow templates are refused or stopped in time
//! while /healthz keeps answering; oversized parameter lists, filters and sorts are refused.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::fake_provider::FakeProvider;
use crate::harness::{slack_provider, Response, Server};

use super::{action, id, oauth2_authorization, proxy_path, short, Echo};

fn field_keys(r: &Response) -> Vec<String> {
    r.body["error"]["fields"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default()
}

/// The worst /healthz latency over a few probes while something else runs.
async fn health_latency(base: &str) -> Duration {
    let client = reqwest::Client::new();
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = Instant::now();
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        worst = worst.max(started.elapsed());
    }
    worst
}

#[tokio::test]
async fn loops_over_budget_are_refused_on_save_or_stopped_while_rendering_and_health_keeps_answering() {
    let echo = Echo::start().await;
    let s = Server::start().await;
    let api = format!("{}/api", echo.base);

    // Literal bounds are plainly over budget: refused on save, naming the field.
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "huge", "url": api.clone() + "/{% for i in (1..100000000) %}{% endfor %}x"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "template_too_expensive"), "{}", r.text);
    assert!(!r.field_errors("url").is_empty(), "{}", r.text);
    let nested = "{% for i in (1..6000) %}{% for j in (1..6000) %}{% endfor %}{% endfor %}";
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "nested", "url": api, "headers": [{"key": "X-Bomb", "value": nested}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "template_too_expensive"), "{}", r.text);
    assert!(field_keys(&r).iter().any(|k| k.starts_with("headers")), "{}", r.text);
    assert_eq!(s.count("connections").await, 0);

    // Bounds from variables are only known when rendering: stopped there.
    let url_bomb = s
        .create(
            "connections",
            json!({"name": "url-bomb", "url": api.clone() + "/{% for i in (1..n) %}{% endfor %}x",
            "template_parameters": [{"key": "n", "value": "100000000"}]}),
        )
        .await;
    let nested_bomb = s
        .create(
            "connections",
            json!({"name": "nested-bomb", "url": api,
            "headers": [{"key": "X-Bomb", "value": "{% for i in (1..n) %}{% for j in (1..n) %}{% endfor %}{% endfor %}"}],
            "template_parameters": [{"key": "n", "value": "6000"}]}),
        )
        .await;
    let wide = s
        .create(
            "connections",
            json!({"name": "wide", "url": api,
            "headers": [{"key": "X-Wide", "value": "{% for i in (1..n) %}0123456789{% endfor %}"}],
            "template_parameters": [{"key": "n", "value": "9000"}]}),
        )
        .await;
    let (p1, p2, p3) = (proxy_path(&url_bomb, "x"), proxy_path(&nested_bomb, "x"), proxy_path(&wide, "x"));
    let started = Instant::now();
    let (a, b, c, worst) = tokio::join!(s.get(&p1), s.get(&p2), s.get(&p3), health_latency(&s.base));
    assert!(started.elapsed() < Duration::from_secs(5), "the renders took {:?}", started.elapsed());
    for (r, field) in [(&a, "url"), (&b, "headers"), (&c, "headers")] {
        assert_eq!((r.status, r.code()), (409, "template_too_expensive"), "{}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains(field), "{}", r.text);
    }
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?} while the templates rendered");
    assert!(echo.seen().is_empty(), "nothing was sent");

    // The same process still serves.
    assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200);
    assert_eq!(s.count("connections").await, 3);
}

#[tokio::test]
async fn twenty_five_thousand_template_parameters_are_refused_quickly_and_lists_stop_at_one_hundred() {
    let s = Server::start().await;
    let provider = s.create("providers", slack_provider()).await;
    let client = |name: &str, pairs: Vec<Value>| json!({"type": "remote_oauth", "provider": provider["id"], "name": name, "template_parameters": pairs});
    let distinct = |n: usize| (0..n).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect::<Vec<_>>();

    for (name, pairs) in [
        ("distinct", distinct(25_000)),
        ("same", (0..25_000).map(|_| json!({"key": "k", "value": "v"})).collect::<Vec<_>>()),
    ] {
        let body = client(name, pairs);
        let started = Instant::now();
        let (r, worst) = tokio::join!(s.post("/api/v1/clients", body), health_latency(&s.base));
        assert!(started.elapsed() < Duration::from_secs(3), "{name}: took {:?}", started.elapsed());
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{name}: {}", short(&r.text));
        assert!(field_keys(&r).iter().any(|k| k.starts_with("template_parameters")), "{name}: {}", short(&r.text));
        assert!(worst < Duration::from_secs(1), "{name}: /healthz took {worst:?}");
    }
    let r = s.post("/api/v1/clients", client("over", distinct(101))).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(field_keys(&r).iter().any(|k| k.starts_with("template_parameters")), "{}", r.text);
    s.create("clients", client("at-the-limit", distinct(100))).await;
    assert_eq!(s.count("clients").await, 1);
}

#[tokio::test]
async fn more_than_a_thousand_in_values_are_a_bad_request() {
    let s = Server::start().await;
    s.create("providers", slack_provider()).await;
    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let r = s.get(&format!("/api/v1/providers?name[in]=Slack,{}", values(999))).await;
    assert_eq!(r.status, 200, "1000 values are fine: {}", short(&r.text));
    assert_eq!(r.body["total"], 1);
    // 33,000 values make a URL longer than an HTTP client sends; in a query
    // string they are tried at 1,001 and 8,000, and in full through a filter body.
    for n in [1001, 8_000] {
        let started = Instant::now();
        let r = s.get(&format!("/api/v1/providers?name[in]={}", values(n))).await;
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{n}: {}", short(&r.text));
        let message = r.body["error"]["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(!message.contains("sql"), "no database text: {message}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let r = s.post("/api/v1/providers/delete", json!({"filter": {"name[in]": values(33_000)}})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
    let r = s.post("/api/v1/providers/export", json!({"filter": {"name[in]": values(33_000)}})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
    assert_eq!(s.count("providers").await, 1);
}

#[tokio::test]
async fn templates_that_would_crash_or_stall_the_process_get_an_answer() {
    let s = Server::start().await;
    let provider = s.create("providers", slack_provider()).await;
    let scope = |name: &str| json!({"provider": provider["id"], "name": name});
    // Non-ASCII inside a tag, an integer overflow, a huge date width, deep nesting by brackets.
    let crafted = [
        "{{é}}".to_owned(),
        "{% assign x = -9223372036854775808 | divided_by: -1 %}{{ x }}".to_owned(),
        "{% assign x = -9223372036854775808 | modulo: -1 %}{{ x }}".to_owned(),
        "{% assign d = 'now' | date: '%99999999999Y' %}{{ d }}".to_owned(),
        format!("{{{{ {}a{} }}}}", "a[".repeat(3000), "]".repeat(3000)),
        format!("{}x{}", "{% if a %}".repeat(1500), "{% endif %}".repeat(1500)),
        "{% ifchanged %}{% for i in (1..9000) %}xxxxxxxxxx{% endfor %}{% endifchanged %}".to_owned(),
    ];
    for (i, name) in crafted.iter().enumerate() {
        let started = Instant::now();
        let r = s.post("/api/v1/scopes", scope(&format!("{name}{i}"))).await;
        assert!(matches!(r.status, 201 | 422), "{}: {}", short(name), short(&r.text));
        assert!(started.elapsed() < Duration::from_secs(2), "{}", short(name));
        assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200, "still serving");
    }
    // Text that Liquid and Grantry's lexer could read differently is refused.
    for name in ["{% raw %}{%{% endraw %}{{ p }}", "{% comment %}x{% endcomment %}", "{{ '{% if %}' }}"] {
        let r = s.post("/api/v1/scopes", scope(name)).await;
        assert_eq!(r.status, 422, "{name}: {}", short(&r.text));
    }
}

#[tokio::test]
async fn many_in_conditions_together_are_bounded_too() {
    let s = Server::start().await;
    let values = (0..1000).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let query = (0..4).map(|_| format!("name[in]={values}")).collect::<Vec<_>>().join("&");
    let r = s.get(&format!("/api/v1/providers?{query}")).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
    assert!(!r.text.to_lowercase().contains("sql"));
}

#[tokio::test]
async fn an_import_full_of_slow_templates_is_checked_within_one_budget() {
    let s = Server::start().await;
    let slow =
        "{% for i in (1..9999) %}{% assign x = 'abcdefghijklmnopqrstuvwxyz' | sha256 | sha256 | sha256 %}{% endfor %}";
    let providers: Vec<Value> = (0..300)
        .map(|i| {
            json!({"type": "generic", "namespace": "Slow", "name": format!("p{i}"),
                        "authorization_endpoint": format!("https://slow.example/{i}/{slow}")})
        })
        .collect();
    let started = Instant::now();
    let r = s.post("/api/v1/providers/import", json!(providers)).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", short(&r.text));
    assert!(took < Duration::from_secs(5), "the whole import took {took:?}");
    let failed = r.body["failed"].as_array().unwrap();
    assert!(!failed.is_empty(), "the budget ran out: {}", short(&r.text));
    assert!(failed.iter().all(|f| f["error"]["code"] == "template_too_expensive"), "{}", short(&r.text));
    assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200);
}

#[tokio::test]
async fn one_flow_step_renders_its_templates_within_one_budget() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let heavy =
        "{% for i in (1..n) %}{% assign x = 'abcdefghijklmnopqrstuvwxyz' | sha256 | sha256 | sha256 %}{% endfor %}";
    let params: Vec<Value> = (0..100).map(|i| json!({"key": format!("p{i}"), "value": heavy})).collect();
    let headers: Vec<Value> = (0..100).map(|i| json!({"key": format!("X-H{i}"), "value": heavy})).collect();
    let auth = oauth2_authorization(
        &s,
        &fake,
        json!({"request_token_parameters": params, "request_token_headers": headers,
               "template_parameters": [{"key": "n", "value": "9999"}]}),
    )
    .await;
    s.patch(&format!("/api/v1/authorizations/{}", id(&auth)), json!({"grant_type": "client_credentials"})).await;
    let started = Instant::now();
    let authorize = action(&auth, "authorize");
    let (r, health) = tokio::join!(s.post(&authorize, json!({})), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        health_latency(&s.base).await
    });
    assert!(started.elapsed() < Duration::from_secs(3), "the step took {:?}", started.elapsed());
    assert!(health < Duration::from_secs(1), "/healthz took {health:?}");
    assert_eq!(r.body["last_error"]["error"], "template_too_expensive", "{}", short(&r.text));
    assert!(fake.seen().is_empty(), "no request went out");
}

#[tokio::test]
async fn a_sort_of_many_fields_is_a_bad_request() {
    let s = Server::start().await;
    let sort = vec!["name"; 2001].join(",");
    let r = s.get(&format!("/api/v1/providers?sort={sort}")).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
}
