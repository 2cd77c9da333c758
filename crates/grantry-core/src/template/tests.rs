#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn vars(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn a_shop_template_renders_with_the_authorization_parameter() {
    let out = render("https://{{shop}}.myshopify.com/admin/oauth/authorize", &vars(json!({"shop": "acme"})));
    assert_eq!(out.unwrap(), "https://acme.myshopify.com/admin/oauth/authorize");
}

#[test]
fn a_missing_variable_renders_empty() {
    assert_eq!(render("read {{read}}", &vars(json!({}))).unwrap(), "read ");
}

#[test]
fn grantry_filters_compute_the_known_digests() {
    let v = vars(json!({"s": "abc", "k": "key"}));
    assert_eq!(render("{{ s | base64_encode }}", &v).unwrap(), "YWJj");
    assert_eq!(render("{{ 'YWJj' | base64_decode }}", &v).unwrap(), "abc");
    assert_eq!(render("{{ s | md5 }}", &v).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        render("{{ s | sha256 }}", &v).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // RFC 4231 test case 2.
    assert_eq!(
        render("{{ 'what do ya want for nothing?' | hmac_sha256: 'Jefe' }}", &v).unwrap(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(render("{{ 'a b&c' | url_encode }}", &v).unwrap(), "a%20b%26c");
}

#[test]
fn template_bombs_end_in_an_error_not_a_crash() {
    let v = vars(json!({}));
    let huge = render("{% for i in (1..100000000) %}{% endfor %}", &v).unwrap_err();
    assert!(matches!(huge, RenderError::TooExpensive(_)), "{huge:?}");
    let nested = render("{% for i in (1..6000) %}{% for j in (1..6000) %}{% endfor %}{% endfor %}", &v);
    assert!(matches!(nested, Err(RenderError::TooExpensive(_))));
    let doubling =
        format!("{{% assign s = 'xxxxxxxxxxxxxxxx' %}}{}{{{{ s }}}}", "{% assign s = s | append: s %}".repeat(40));
    assert!(matches!(render(&doubling, &v), Err(RenderError::TooExpensive(_))));
    let capture = "{% capture c %}{% for i in (1..9000) %}0123456789{% endfor %}{% endcapture %}{{ c }}";
    // One call that would build gigabytes: refused before it allocates.
    let wide = "{% assign s = 'xxxxxxxxxxxxxxxx' %}{% for i in (1..12) %}{% assign s = s | append: s %}{% endfor %}";
    assert!(render(&format!("{wide}{{{{ s | replace: '', s }}}}"), &v).is_err());
    assert!(render(&format!("{wide}{{% assign a = s | split: 'x' %}}{{{{ a | join: s }}}}"), &v).is_err());
    assert_eq!(render("{{ 'a,b' | split: ',' | join: '-' }}{{ 'aXb' | replace: 'X', '_' }}", &v).unwrap(), "a-ba_b");
    assert!(matches!(render(capture, &v), Err(RenderError::TooExpensive(_))));
    let budget = RequestBudget::default();
    assert!(check_budget("{% for i in (1..100000000) %}{% endfor %}", &budget).is_err());
    assert!(check_budget("{% for i in (1..n) %}{% endfor %}", &budget).is_ok());
    // One request's templates share one save budget.
    let slow = "{% for i in (1..9999) %}{% assign x = 'abcdefghijklmnopqrstuvwxyz' | sha256 | sha256 | sha256 | sha256 %}{% endfor %}";
    let spent = RequestBudget::default();
    let refused = (0..200).filter(|_| check_budget(slow, &spent).is_err()).count();
    assert!(refused > 0, "the request's budget ran out");
    assert!(Duration::from_micros(spent.spent_micros.load(Ordering::Relaxed)) < MAX_REQUEST_TIME + MAX_TIME);
    // Ordinary loops still work, with forloop, limit, offset, reversed, else and break.
    let list = vars(json!({"xs": ["a", "b", "c", "d"]}));
    assert_eq!(
        render("{% for x in xs offset: 1 limit: 2 %}{{ forloop.index }}{{ x }}{% endfor %}", &list).unwrap(),
        "1b2c"
    );
    assert_eq!(
        render("{% for i in (1..5) reversed %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}", &v).unwrap(),
        "543"
    );
    assert_eq!(render("{% for x in none %}a{% else %}empty{% endfor %}", &v).unwrap(), "empty");
}

#[test]
fn deep_nesting_is_refused_before_the_parser_recurses() {
    let nested = |n: usize| format!("{}x{}", "{%if a%}".repeat(n), "{%endif%}".repeat(n));
    // On a small stack, as on a worker thread: no overflow, an error.
    let deep = nested(5000);
    let ok = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || check(&deep)).unwrap().join().unwrap();
    assert!(ok.unwrap_err().contains("nest"));
    let shallow = nested(MAX_NESTING);
    let ok = std::thread::Builder::new().stack_size(2 * 1024 * 1024).spawn(move || check(&shallow)).unwrap().join();
    assert!(ok.unwrap().is_ok());
}

#[test]
fn secret_variables_are_judged_by_position() {
    assert_eq!(forbidden_variables("{{identifier}}|{{secret}}", Position::AuthorizeQuery).unwrap(), ["secret"]);
    assert_eq!(forbidden_variables("{{identifier}}", Position::Url).unwrap(), ["identifier"]);
    assert!(forbidden_variables("{{ refresh_token | base64_encode }}", Position::Request).unwrap().is_empty());
    let all = vars(json!({"secret": "s", "identifier": "i", "shop": "x"}));
    let url_vars = visible(&all, Position::Url);
    assert_eq!(url_vars.keys().collect::<Vec<_>>(), ["shop"]);
}

#[test]
fn a_broken_template_is_refused_with_a_reason() {
    let err = check("https://{{ shop").unwrap_err();
    assert!(err.starts_with("is not a valid template"), "{err}");
    assert!(check("{{ x | no_such_filter }}").is_err());
    assert!(check("plain text").is_ok());
}
