#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn errors_of(kind: Kind, rtype: &str, body: Value) -> FieldErrors {
    match parse(kind, kind.parse_type(rtype).unwrap(), body.as_object().unwrap(), &RequestBudget::default()) {
        Ok(_) => FieldErrors::default(),
        Err(e) => e,
    }
}

#[test]
fn wrong_shapes_are_named_per_field() {
    let e = errors_of(
        Kind::Provider,
        "oauth2",
        json!({"name": 5, "token_method": "PUT", "scope_separator": "::", "signature_method": "PLAINTEXT",
               "token_endpoint": "ftp://x", "colour": "red"}),
    );
    assert_eq!(e.0["name"], vec!["must be a string, not a number"]);
    assert_eq!(e.0["token_method"], vec!["must be one of: POST, GET"]);
    assert_eq!(e.0["scope_separator"], vec!["must be at most one character"]);
    assert_eq!(e.0["signature_method"], vec!["is not a field of OAuth 2.0 Provider"]);
    assert_eq!(e.0["token_endpoint"], vec!["must be an http:// or https:// URL"]);
    assert_eq!(e.0["colour"], vec!["is not a field of providers"]);
}

#[test]
fn key_value_lists_need_unique_non_blank_keys_and_valid_templates() {
    let e = errors_of(
        Kind::Client,
        "remote_oauth",
        json!({"request_token_parameters": [{"key": "a", "value": "1"}, {"key": "a"}, {"key": " "}, {"key": "b", "value": "{{ x"}]}),
    );
    assert!(e.0["request_token_parameters[1].key"][0].contains("twice"));
    assert_eq!(e.0["request_token_parameters[2].key"], vec!["must not be blank"]);
    assert!(e.0["request_token_parameters[3].value"][0].starts_with("is not a valid template"));
}

#[test]
fn a_refresh_request_gets_defaults_and_needs_a_url() {
    let input = parse(
        Kind::Provider,
        RecordType::Provider(crate::ProviderType::OAuth2),
        json!({"refresh_request": {"url": "https://x/token"}}).as_object().unwrap(),
        &RequestBudget::default(),
    )
    .ok()
    .unwrap();
    let rr = &input.values["refresh_request"];
    assert_eq!(rr["method"], "POST");
    assert_eq!(rr["access_token_pointer"], "/access_token");
    let e =
        errors_of(Kind::Provider, "oauth2", json!({"refresh_request": {"method": "GET", "expires_in_pointer": "x"}}));
    assert_eq!(e.0["refresh_request.url"], vec!["must not be blank"]);
    assert!(e.0["refresh_request.expires_in_pointer"][0].contains("JSON pointer"));
}
