//! Records and their rules (docs/concepts.md §1): validation, natural keys, inline creation, updates.

use serde_json::json;

use crate::harness::{slack_provider, Server};

#[tokio::test]
async fn every_provider_rule_is_checked_and_named_per_field() {
    let s = Server::start().await;

    // Required fields of an oauth2 provider, and trimming to blank.
    let r = s.post("/api/v1/providers", json!({"type": "oauth2", "namespace": "   ", "name": ""})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(r.field_errors("namespace"), ["must not be blank"]);
    assert_eq!(r.field_errors("name"), ["must not be blank"]);
    assert_eq!(r.field_errors("authorization_endpoint"), ["must not be blank"]);
    assert_eq!(r.field_errors("token_endpoint"), ["must not be blank"]);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("namespace"));

    // oauth1 needs its request token endpoint; generic needs neither endpoint.
    let r = s
        .post(
            "/api/v1/providers",
            json!({"type": "oauth1", "namespace": "X", "name": "Y",
        "authorization_endpoint": "https://x/a", "token_endpoint": "https://x/t"}),
        )
        .await;
    assert_eq!(r.field_errors("request_token_endpoint"), ["must not be blank"]);
    s.create("providers", json!({"type": "generic", "namespace": "G", "name": "Generic"})).await;

    // Enums, separator length, URL templates, templates that do not parse.
    let mut p = slack_provider();
    p["token_method"] = json!("PUT");
    p["scope_separator"] = json!("::");
    p["pkce"] = json!("maybe");
    p["token_endpoint_auth_method"] = json!("private_key_jwt");
    p["authorization_endpoint"] = json!("https://{{ shop .myshopify.com");
    p["revocation_endpoint"] = json!("mailto:someone");
    let r = s.post("/api/v1/providers", p).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.field_errors("token_method"), ["must be one of: POST, GET"]);
    assert_eq!(r.field_errors("scope_separator"), ["must be at most one character"]);
    assert_eq!(r.field_errors("pkce"), ["must be one of: auto, s256, off"]);
    assert!(r.field_errors("token_endpoint_auth_method")[0].contains("client_secret_basic"));
    assert!(r.field_errors("authorization_endpoint")[0].starts_with("is not a valid template"));
    assert_eq!(r.field_errors("revocation_endpoint"), ["must be an http:// or https:// URL"]);

    // Fields of another type are refused, not silently dropped.
    let mut p = slack_provider();
    p["signature_method"] = json!("HMAC-SHA1");
    let r = s.post("/api/v1/providers", p).await;
    assert_eq!(r.field_errors("signature_method"), ["is not a field of OAuth 2.0 Provider"]);

    // The custom refresh strategy needs a refresh request, and only it may have one.
    let mut p = slack_provider();
    p["refresh_token_strategy"] = json!("custom");
    let r = s.post("/api/v1/providers", p.clone()).await;
    assert_eq!(r.field_errors("refresh_request"), ["is required when refresh_token_strategy is custom"]);
    p["refresh_token_strategy"] = json!("default");
    p["refresh_request"] = json!({"url": "https://slack.com/api/refresh"});
    let r = s.post("/api/v1/providers", p.clone()).await;
    assert_eq!(r.field_errors("refresh_request"), ["is only allowed when refresh_token_strategy is custom"]);
    p["refresh_token_strategy"] = json!("custom");
    // A secret never goes into a URL: the refresh token goes into the body.
    p["refresh_request"] = json!({"method": "POST", "url": "https://slack.com/api/refresh?t={{refresh_token}}", "body_format": "json",
        "parameters": [{"key": "grant_type", "value": "refresh_token"}]});
    let r = s.post("/api/v1/providers", p.clone()).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.field_errors("refresh_request.url")[0].contains("`refresh_token`"), "{}", r.text);
    p["refresh_request"] = json!({"method": "POST", "url": "https://slack.com/api/refresh", "body_format": "json",
        "parameters": [{"key": "grant_type", "value": "refresh_token"}, {"key": "t", "value": "{{refresh_token}}"}]});
    let created = s.create("providers", p).await;
    assert_eq!(created["refresh_request"]["access_token_pointer"], "/access_token");
    assert_eq!(created["refresh_request"]["body_format"], "json");

    // A blank separator is kept as given; a single space is kept untrimmed.
    let mut p = slack_provider();
    p["namespace"] = json!("Sep");
    p["scope_separator"] = json!(" ");
    let created = s.create("providers", p).await;
    assert_eq!(created["scope_separator"], " ");

    // Defaults of an oauth2 provider.
    assert_eq!(created["token_method"], "POST");
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(created["pkce"], "auto");
    assert_eq!(created["response_type"], "code");
    s.stop().await;
}

#[tokio::test]
async fn natural_keys_are_unique_and_trimmed_across_types() {
    let s = Server::start().await;
    s.create("providers", slack_provider()).await;
    // Same key with spaces, and as another provider type: still taken.
    let r = s.post("/api/v1/providers", json!({"type": "generic", "namespace": " Slack ", "name": "Slack  "})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.field_errors("name"), ["is already taken in namespace Slack"]);
    // Another namespace is another key.
    s.create("providers", json!({"type": "generic", "namespace": "Other", "name": "Slack"})).await;

    // Clients: unique per provider.
    let client = json!({"type": "remote_oauth", "provider": {"namespace": "Slack", "name": "Slack"}, "name": "main"});
    s.create("clients", client.clone()).await;
    let r = s.post("/api/v1/clients", client).await;
    assert_eq!(r.field_errors("name"), ["is already taken for provider Slack | Slack"]);
    s.create(
        "clients",
        json!({"type": "generic", "provider": {"namespace": "Other", "name": "Slack"}, "name": "main"}),
    )
    .await;

    // Authorizations: unique across types, namespace may be empty.
    let auth = json!({"type": "basic", "name": "ops"});
    let created = s.create("authorizations", auth.clone()).await;
    assert_eq!(created["label"], "ops");
    let r = s.post("/api/v1/authorizations", json!({"type": "api_key", "name": "ops", "key_name": "X-Key"})).await;
    assert_eq!(r.field_errors("name"), ["is already taken without a namespace"]);
    s.stop().await;
}

#[tokio::test]
async fn a_client_is_created_with_its_provider_inline_and_gets_the_provider_namespace() {
    let s = Server::start().await;
    let client = s
        .create(
            "clients",
            json!({
                "type": "remote_oauth",
                "provider": slack_provider(),
                "name": " main ",
                "identifier": "client-id-1",
                "secret": "client-secret-1",
                "request_token_parameters": [{"key": "audience", "value": "{{ audience }}", "description": "who"}]
            }),
        )
        .await;
    assert_eq!(client["name"], "main");
    assert_eq!(client["namespace"], "Slack", "the namespace defaults to the provider's");
    assert_eq!(client["label"], "Slack | Slack | main");
    assert_eq!(client["provider"]["namespace"], "Slack");
    assert!(client["provider"]["id"].is_string());
    assert_eq!(client["secrets"], json!({"identifier": true, "secret": true}));
    assert_eq!(
        client["request_token_parameters"][0],
        json!({"key": "audience", "value": "{{ audience }}", "description": "who"})
    );

    // The inline provider is a record of its own, with its automatic {{scope}} scope.
    let providers = s.get("/api/v1/providers").await;
    assert_eq!(providers.body["total"], 1);
    let scopes = s.get("/api/v1/scopes?provider.name=Slack").await;
    assert_eq!(scopes.body["items"][0]["name"], "{{scope}}");

    // A failing outer record keeps the inner one (docs/concepts.md §2.5).
    let r = s
        .post(
            "/api/v1/clients",
            json!({
                "type": "remote_oauth",
                "provider": {"type": "oauth2", "namespace": "GitHub", "name": "GitHub",
                             "authorization_endpoint": "https://github.com/login/oauth/authorize",
                             "token_endpoint": "https://github.com/login/oauth/access_token"},
                "name": ""
            }),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.field_errors("name"), ["must not be blank"]);
    assert_eq!(s.count("providers").await, 2);

    // An invalid inline record reports its errors under the reference's path.
    let r = s
        .post(
            "/api/v1/clients",
            json!({"type": "remote_oauth", "name": "x",
        "provider": {"type": "oauth2", "namespace": "Bad", "name": "Bad"}}),
        )
        .await;
    assert_eq!(r.field_errors("provider.token_endpoint"), ["must not be blank"]);
    assert_eq!(s.count("providers").await, 2);

    // References by id, by {"id"}, by natural key; unknown ones are named.
    let pid = client["provider"]["id"].as_str().unwrap();
    s.create("clients", json!({"type": "generic", "provider": pid, "name": "by-id"})).await;
    s.create("clients", json!({"type": "generic", "provider": {"id": pid}, "name": "by-id-object"})).await;
    let r = s.post("/api/v1/clients", json!({"type": "generic", "provider": "nope", "name": "x"})).await;
    assert_eq!(r.field_errors("provider"), ["no provider has id `nope`"]);
    let r = s
        .post(
            "/api/v1/clients",
            json!({"type": "generic", "provider": {"namespace": "Slack", "name": "Nope"}, "name": "x"}),
        )
        .await;
    assert_eq!(r.field_errors("provider"), ["no provider Slack | Nope"]);
    let r = s.post("/api/v1/clients", json!({"type": "generic", "name": "x"})).await;
    assert_eq!(r.field_errors("provider"), ["is required"]);
    // A generic client has no token request fields.
    let r = s
        .post("/api/v1/clients", json!({"type": "generic", "provider": pid, "name": "y", "request_token_headers": []}))
        .await;
    assert_eq!(r.field_errors("request_token_headers"), ["is not a field of Generic Client"]);
    s.stop().await;
}

#[tokio::test]
async fn an_authorization_takes_scopes_of_its_clients_provider_only() {
    let s = Server::start().await;
    let client =
        s.create("clients", json!({"type": "remote_oauth", "provider": slack_provider(), "name": "main"})).await;
    let provider = &client["provider"];
    let chat =
        s.create("scopes", json!({"provider": provider["id"], "name": "chat:write", "description": "post"})).await;
    s.create("scopes", json!({"provider": {"namespace": "Slack", "name": "Slack"}, "name": "read {{read}}"})).await;
    let github = s.create("providers", json!({"type": "oauth2", "namespace": "GitHub", "name": "GitHub",
        "authorization_endpoint": "https://github.com/login/oauth/authorize", "token_endpoint": "https://github.com/login/oauth/access_token"})).await;
    let repo = s.create("scopes", json!({"provider": github["id"], "name": "repo"})).await;

    // Scope rules: oauth2 provider only, template names parsed.
    let oauth1 = s
        .create(
            "providers",
            json!({"type": "oauth1", "namespace": "Q", "name": "Q", "authorization_endpoint": "https://q/a",
        "token_endpoint": "https://q/t", "request_token_endpoint": "https://q/r"}),
        )
        .await;
    let r = s.post("/api/v1/scopes", json!({"provider": oauth1["id"], "name": "x"})).await;
    assert!(r.field_errors("provider")[0].starts_with("must be an OAuth 2.0 provider"), "{}", r.text);
    let r = s.post("/api/v1/scopes", json!({"provider": github["id"], "name": "read {{ x"})).await;
    assert!(r.field_errors("name")[0].starts_with("is not a valid template"));

    let auth = s
        .create(
            "authorizations",
            json!({"type": "oauth2", "namespace": "Acme", "name": "slack-workspace",
            "client": {"provider": {"namespace": "Slack", "name": "Slack"}, "name": "main"},
            "scopes": ["chat:write", chat["id"], "read {{read}}", "{{scope}}"],
            "template_parameters": [{"key": "read", "value": "all"}],
            "metadata": {"team": "T1"}}),
        )
        .await;
    assert_eq!(auth["label"], "Acme | slack-workspace");
    assert_eq!(auth["status"], "unauthorized");
    assert_eq!(auth["authorized"], false);
    assert_eq!(auth["grant_type"], "authorization_code");
    let names: Vec<&str> = auth["scopes"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["chat:write", "read {{read}}", "{{scope}}"], "in order, without duplicates");
    assert_eq!(
        auth["secrets"],
        json!({"access_token": false, "refresh_token": false, "id_token": false, "token_response": false})
    );

    // A scope of another provider is refused, by name and by id.
    let r = s
        .post(
            "/api/v1/authorizations",
            json!({"type": "oauth2", "name": "x", "client": client["id"], "scopes": ["repo"]}),
        )
        .await;
    assert_eq!(r.field_errors("scopes[0]"), ["`repo` is not a scope of provider Slack | Slack"]);
    let r = s
        .post(
            "/api/v1/authorizations",
            json!({"type": "oauth2", "name": "x", "client": client["id"], "scopes": [repo["id"]]}),
        )
        .await;
    assert!(r.field_errors("scopes[0]")[0].contains("another provider"), "{}", r.text);

    // The client must fit the authorization type.
    let q_client = s.create("clients", json!({"type": "remote_oauth", "provider": oauth1["id"], "name": "q"})).await;
    let r = s.post("/api/v1/authorizations", json!({"type": "oauth2", "name": "x", "client": q_client["id"]})).await;
    assert_eq!(r.field_errors("client"), ["must use an OAuth 2.0 provider; client Q | Q | q does not"]);
    s.create("authorizations", json!({"type": "oauth1", "name": "q1", "client": q_client["id"]})).await;
    let generic_provider =
        s.create("providers", json!({"type": "generic", "namespace": "G", "name": "NoEndpoint"})).await;
    let g_client =
        s.create("clients", json!({"type": "generic", "provider": generic_provider["id"], "name": "g"})).await;
    let r = s.post("/api/v1/authorizations", json!({"type": "generic", "name": "g", "client": g_client["id"]})).await;
    assert!(r.field_errors("client")[0].contains("authorization endpoint"));

    // Changing the client to another provider's keeps scopes that no longer fit out.
    let gh_client = s.create("clients", json!({"type": "remote_oauth", "provider": github["id"], "name": "gh"})).await;
    let path = format!("/api/v1/authorizations/{}", auth["id"].as_str().unwrap());
    let r = s.patch(&path, json!({"client": gh_client["id"]})).await;
    assert_eq!(r.status, 422);
    assert!(
        r.field_errors("scopes[0]")[0].contains("is not a scope of the client's provider GitHub | GitHub"),
        "{}",
        r.text
    );
    let r = s.patch(&path, json!({"client": gh_client["id"], "scopes": ["repo"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn basic_and_api_key_authorizations_are_authorized_when_their_secrets_are_set() {
    let s = Server::start().await;
    let basic = s
        .create("authorizations", json!({"type": "basic", "namespace": "Ops", "name": "jira", "username": "bot"}))
        .await;
    assert_eq!(basic["status"], "unauthorized");
    let path = format!("/api/v1/authorizations/{}", basic["id"].as_str().unwrap());
    let r = s.patch(&path, json!({"password": "pa55word-basic"})).await;
    assert_eq!(r.body["status"], "authorized", "{}", r.text);
    assert_eq!(r.body["authorized"], true);
    assert!(r.body["authorized_at"].is_string());
    assert_eq!(r.body["secrets"], json!({"username": true, "password": true}));
    // Leaving a secret out keeps it; null clears it.
    let r = s.patch(&path, json!({"metadata": {"team": "ops"}})).await;
    assert_eq!(r.body["secrets"]["password"], true);
    let r = s.patch(&path, json!({"password": null})).await;
    assert_eq!(r.body["secrets"]["password"], false);
    assert_eq!(r.body["status"], "unauthorized");
    assert!(r.body["authorized_at"].is_null());

    let r = s.post("/api/v1/authorizations", json!({"type": "api_key", "name": "k"})).await;
    assert_eq!(r.field_errors("key_name"), ["must not be blank"]);
    let key = s.create("authorizations", json!({"type": "api_key", "name": "k", "key_name": "X-Api-Key", "key_value": "k-123", "placement": "query"})).await;
    assert_eq!(key["status"], "authorized");
    assert_eq!(key["placement"], "query");
    let r = s
        .post("/api/v1/authorizations", json!({"type": "api_key", "name": "k2", "key_name": "k", "placement": "body"}))
        .await;
    assert_eq!(r.field_errors("placement"), ["must be one of: header, query"]);
    s.stop().await;
}

#[tokio::test]
async fn patch_changes_only_what_it_names_and_refuses_type_changes() {
    let s = Server::start().await;
    let p = s.create("providers", slack_provider()).await;
    let path = format!("/api/v1/providers/{}", p["id"].as_str().unwrap());
    let r = s.patch(&path, json!({"token_method": "GET"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["token_method"], "GET");
    assert_eq!(r.body["scope_separator"], ",");
    assert_eq!(r.body["created_at"], p["created_at"]);
    let r = s.patch(&path, json!({"type": "oauth1"})).await;
    assert_eq!(r.status, 422);
    assert!(r.field_errors("type")[0].starts_with("cannot be changed"));
    let r = s.patch(&path, json!({"name": null})).await;
    assert_eq!(r.field_errors("name"), ["must not be blank"]);
    // A patch that changes nothing leaves updated_at alone.
    let before = s.get(&path).await.body;
    let after = s.patch(&path, json!({"token_method": "GET"})).await.body;
    assert_eq!(before["updated_at"], after["updated_at"]);
    // The {{scope}} scope cannot be renamed.
    let scope = &s.get("/api/v1/scopes").await.body["items"][0];
    let r = s.patch(&format!("/api/v1/scopes/{}", scope["id"].as_str().unwrap()), json!({"name": "renamed"})).await;
    assert!(r.field_errors("name")[0].contains("cannot be renamed"));
    let r = s.patch("/api/v1/providers/does-not-exist", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    s.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_creates_of_one_natural_key_make_exactly_one_record() {
    let s = std::sync::Arc::new(Server::start().await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.post("/api/v1/providers", slack_provider()).await.status }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 49, "{statuses:?}");
    assert_eq!(s.count("providers").await, 1);
    assert_eq!(s.count("scopes").await, 1, "one {{scope}} scope, from the one provider");
}
