//! Secrets (docs/concepts.md §6): never in a response, a log line or the database file;
//! sealed under the master key, which must match on every start.

use serde_json::json;

use crate::harness::{slack_provider, Server};

const SECRETS: [&str; 6] = [
    "ID-4f1c9a-client-identifier",
    "SECRET-8e2b7d-client-secret",
    "USER-2a9f-basic-username",
    "PASS-7c3e-basic-password",
    "KEY-5d8a-api-key-value",
    "SECRET-0b6f-replaced-secret",
];

async fn store_secrets(s: &Server) -> serde_json::Value {
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "provider": slack_provider(), "name": "main",
            "identifier": SECRETS[0], "secret": SECRETS[1]}),
        )
        .await;
    s.create("authorizations", json!({"type": "basic", "name": "b", "username": SECRETS[2], "password": SECRETS[3]}))
        .await;
    s.create("authorizations", json!({"type": "api_key", "name": "k", "key_name": "X-Key", "key_value": SECRETS[4]}))
        .await;
    client
}

/// Every way a record can be read back.
async fn read_everything(s: &Server) {
    for kind in ["providers", "scopes", "clients", "authorizations"] {
        let list = s.get(&format!("/api/v1/{kind}?per_page=100")).await;
        for item in list.body["items"].as_array().unwrap() {
            s.get(&format!("/api/v1/{kind}/{}", item["id"].as_str().unwrap())).await;
        }
        s.post(&format!("/api/v1/{kind}/export"), json!({})).await;
        s.get(&format!("/api/v1/{kind}/schema")).await;
        s.get(&format!("/api/v1/{kind}?secret[exists]=true")).await;
    }
}

#[tokio::test]
async fn secret_values_appear_in_no_response_no_log_and_not_in_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let client = store_secrets(&s).await;
    let path = format!("/api/v1/clients/{}", client["id"].as_str().unwrap());
    // Errors that involve secret fields must not echo them either.
    let r = s.patch(&path, json!({"secret": SECRETS[5], "name": ""})).await;
    assert_eq!(r.status, 422);
    let r = s.patch(&path, json!({"identifier": {"nested": SECRETS[0]}})).await;
    assert_eq!(r.field_errors("identifier"), ["must be a string or null"]);
    let r = s
        .post("/api/v1/clients", json!({"type": "remote_oauth", "provider": "nope", "name": "x", "secret": SECRETS[5]}))
        .await;
    assert_eq!(r.status, 422);
    // Importing a record with secrets, and re-importing it.
    let r = s
        .post(
            "/api/v1/clients/import",
            json!([{"type": "remote_oauth", "provider": {"namespace": "Slack", "name": "Slack"},
        "name": "main", "secret": SECRETS[1], "identifier": SECRETS[0]}]),
        )
        .await;
    // A given secret always counts as a change: the answer must not tell
    // whether a guess equals the stored value.
    assert_eq!((r.body["updated"].as_u64(), r.body["unchanged"].as_u64()), (Some(1), Some(0)), "{}", r.text);
    read_everything(&s).await;

    let seen = s.seen.lock().unwrap().join("\n");
    assert!(seen.contains("\"secret\":true"), "the responses say which secrets are set");
    let log = s.log_text();
    assert!(log.contains("request"), "the server logged requests");
    for secret in SECRETS {
        assert!(!seen.contains(secret), "{secret} appeared in a response");
        assert!(!log.contains(secret), "{secret} appeared in the log");
    }
    let data_dir = s.data_dir.clone();
    s.stop().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("grantry.db") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(bytes.len() > 4096, "the database file was read");
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(haystack.contains("Slack"), "non-secret fields are in the file as a control");
    for secret in SECRETS {
        assert!(!haystack.contains(secret), "{secret} is in the database file in clear");
    }
}

#[tokio::test]
async fn a_restart_keeps_every_record_and_its_secrets_usable() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let client = store_secrets(&s).await;
    let before = s.get("/api/v1/clients?per_page=100").await.body;
    s.stop().await;

    let key_file = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    assert_eq!(s.get("/api/v1/clients?per_page=100").await.body, before);
    assert_eq!(s.count("authorizations").await, 2);
    // The sealed secrets still open: signing with the basic authorization
    // needs its user name and password.
    let basic = s.get("/api/v1/authorizations?name=b").await.body["items"][0]["id"].as_str().unwrap().to_owned();
    let signed = s
        .post(&format!("/api/v1/authorizations/{basic}/sign"), json!({"method": "GET", "url": "https://api.example/x"}))
        .await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let expected =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{}:{}", SECRETS[2], SECRETS[3]));
    assert_eq!(signed.body["headers"]["Authorization"], format!("Basic {expected}"));
    let path = format!("/api/v1/clients/{}", client["id"].as_str().unwrap());
    let changed = s.patch(&path, json!({"secret": SECRETS[5]})).await;
    assert_ne!(changed.body["updated_at"], client["updated_at"]);
    s.stop().await;

    // The same key given through the environment works as well.
    let key = std::fs::read_to_string(&key_file).unwrap();
    let s = Server::start_in(dir.path(), &[("GRANTRY_MASTER_KEY", key.trim())])
        .await
        .unwrap_or_else(|r| panic!("{}", r.stderr));
    assert_eq!(s.count("clients").await, 1);
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_master_key_refuses_to_start_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    store_secrets(&s).await;
    s.stop().await;
    let db_before = std::fs::read(dir.path().join("grantry.db")).unwrap();

    let other = "ZGlmZmVyZW50LWtleS1kaWZmZXJlbnQta2V5LTMyYiE="; // 32 bytes
    let refused = Server::start_in(dir.path(), &[("GRANTRY_MASTER_KEY", other)]).await.err().expect("must refuse");
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("master key mismatch"), "{}", refused.stderr);

    let key_file = dir.path().join("other.key");
    std::fs::write(&key_file, format!("{other}\n")).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let refused = Server::start_in(dir.path(), &[("GRANTRY_MASTER_KEY_FILE", key_file.to_str().unwrap())])
        .await
        .err()
        .expect("must refuse");
    assert!(refused.stderr.contains("master key mismatch"), "{}", refused.stderr);

    let refused =
        Server::start_in(dir.path(), &[("GRANTRY_MASTER_KEY", "too-short")]).await.err().expect("must refuse");
    assert!(refused.stderr.contains("GRANTRY_MASTER_KEY is not usable"), "{}", refused.stderr);

    assert_eq!(std::fs::read(dir.path().join("grantry.db")).unwrap(), db_before, "the database is untouched");
    // And the right key still works.
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    assert_eq!(s.count("clients").await, 1);
    s.stop().await;
}
