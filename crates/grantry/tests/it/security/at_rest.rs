//! What lies on disk: the data folder, database and master key are private, and values
//! captured by a generic callback are sealed, including ones stored before sealing existed.

#[cfg(unix)]
use std::path::Path;

use serde_json::json;

use crate::harness::{browser, slack_provider, visit, Server};

use super::{id, proxy_path, query_param, record, start_flow, Echo};

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_and_database_are_private_and_a_readable_master_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A folder Grantry creates itself, so that its mode is Grantry's doing.
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    s.create("providers", slack_provider()).await;
    assert_eq!(mode(&data), 0o700, "the data folder");
    let mut database_files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("grantry.db") {
            database_files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(database_files >= 1);
    let key = data.join("master.key");
    assert_eq!(mode(&key), 0o600);
    s.stop().await;

    set_mode(&key, 0o644);
    let refused = Server::start_in(&data, &[]).await.err().expect("a master key file others can read is refused");
    assert!(!refused.status.success());
    assert!(refused.stderr.to_lowercase().contains("master"), "{}", refused.stderr);
    // The same through GRANTRY_MASTER_KEY_FILE.
    let copy = dir.path().join("copy.key");
    std::fs::copy(&key, &copy).unwrap();
    set_mode(&copy, 0o644);
    let refused = Server::start_in(&data, &[("GRANTRY_MASTER_KEY_FILE", copy.to_str().unwrap())])
        .await
        .err()
        .expect("a master key file others can read is refused");
    assert!(!refused.status.success());

    set_mode(&key, 0o600);
    let s = Server::start_in(&data, &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    assert_eq!(s.count("providers").await, 1);
    s.stop().await;
}

#[tokio::test]
async fn values_captured_by_a_generic_callback_are_sealed_and_reach_only_connection_templates() {
    let echo = Echo::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let captured = "CAPT-6b2e-captured-value";
    let client = s
        .create(
            "clients",
            json!({"type": "generic", "name": "g", "provider": {"type": "generic", "namespace": "G", "name": "Generic",
            "authorization_endpoint": "https://consent.example/start"}}),
        )
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "generic", "name": "gen", "client": client["id"], "capture": ["shop_id"]}),
        )
        .await;
    let url = start_flow(&s, &auth).await;
    let callback = query_param(&url, "redirect_uri").unwrap();
    assert!(callback.starts_with(&format!("{}/oauth/callback/", s.base)), "{callback}");
    let state = callback.rsplit('/').next().unwrap().to_owned();
    let landing = visit(&browser(), &format!("{callback}?shop_id={captured}&ignored=x")).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);

    let rec = record(&s, &auth).await;
    assert_eq!(rec["secrets"]["captured"], true, "{rec}");
    assert!(!rec.to_string().contains(captured), "{rec}");
    let params = rec["template_parameters"].as_array().cloned().unwrap_or_default();
    assert!(params.iter().all(|p| p["key"] != "shop_id"), "{rec}");

    // A connection's headers read it as {{callback.shop_id}}; its URL may not.
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "leak", "url": format!("{}/api/{{{{callback.shop_id}}}}", echo.base), "authorization": auth["id"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    let connection = s
        .create(
            "connections",
            json!({"name": "shop", "url": format!("{}/api", echo.base), "authorization": auth["id"],
            "headers": [{"key": "X-Shop", "value": "{{callback.shop_id}}"}]}),
        )
        .await;
    let r = s.get(&proxy_path(&connection, "orders")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(echo.seen()[0].header("x-shop"), Some(captured));

    s.get("/api/v1/authorizations?per_page=100").await;
    s.post("/api/v1/authorizations/export", json!({})).await;
    assert!(!s.seen.lock().unwrap().join("\n").contains(captured), "the captured value reached a response");
    let log = s.log_text();
    assert!(!log.contains(captured), "the captured value is in the log");
    assert!(!log.contains(&state), "the callback state is in the log");
    s.stop().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("grantry.db") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!String::from_utf8_lossy(&bytes).contains(captured), "the captured value is in the database in clear");
}

#[tokio::test]
async fn values_captured_before_sealing_are_sealed_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let client = s
        .create(
            "clients",
            json!({"type": "generic", "name": "g", "provider": {"type": "generic", "namespace": "Old", "name": "Old",
                   "authorization_endpoint": "https://old.example/authorize"}}),
        )
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "generic", "name": "legacy", "client": client["id"], "capture": ["shop_id"]}),
        )
        .await;
    s.stop().await;
    // What an earlier version stored: the captured value as a plain template parameter.
    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("""UPDATE records SET data = json_set(data, '$.template_parameters', json(?)) WHERE name = 'legacy'""",
    ('[{"key": "shop_id", "value": "legacy-captured-4242", "description": "captured from the callback"},'
     ' {"key": "region", "value": "eu", "description": ""}]',))
db.execute("DELETE FROM meta WHERE key = 'captured_sealed'")
db.commit()
"#;
    let out = tokio::process::Command::new(crate::oauth1_oracle::python())
        .args(["-c", script, dir.path().join("grantry.db").to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let record = s.get(&format!("/api/v1/authorizations/{}", id(&auth))).await.body;
    assert_eq!(record["template_parameters"], json!([{"key": "region", "value": "eu", "description": ""}]));
    assert_eq!(record["secrets"]["captured"], true);
    assert!(s.log_text().contains("sealed the captured callback values of 1 generic authorizations"));
    assert!(!s.seen.lock().unwrap().join("\n").contains("legacy-captured-4242"));
    s.stop().await;
}

/// Replicas may start at the same moment on an empty data folder: one master
/// key, one migrated database and one bootstrap token come out, and both serve.
#[tokio::test]
async fn two_servers_starting_at_once_on_an_empty_folder_share_one_key_and_one_token() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = tokio::join!(Server::start_in(dir.path(), &[]), Server::start_in(dir.path(), &[]));
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("a start was refused: {:?} / {:?}", a.err().map(|r| r.stderr), b.err().map(|r| r.stderr)),
        };
        let tokens = a.get("/api/v1/api-tokens").await;
        assert_eq!(tokens.body["items"].as_array().map(Vec::len), Some(1), "{}", tokens.text);
        // A secret sealed by one opens in the other: the same master key.
        let made = b
            .create("authorizations", json!({"type": "basic", "name": "shared", "username": "u", "password": "p"}))
            .await;
        let signed = a
            .post(
                &format!("/api/v1/authorizations/{}/sign", made["id"].as_str().unwrap()),
                json!({"method": "GET", "url": "https://api.example/x"}),
            )
            .await;
        assert_eq!(signed.body["headers"]["Authorization"], "Basic dTpw", "{}", signed.text);
        a.stop().await;
        b.stop().await;
    }
}
