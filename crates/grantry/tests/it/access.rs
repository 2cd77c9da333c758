//! API access: bearer tokens, the bootstrap token, `grantry token create`, health.

use reqwest::Method;

use crate::harness::{command, Server, TOKEN};

#[tokio::test]
async fn the_api_needs_a_valid_bearer_token_and_health_does_not() {
    let s = Server::start().await;
    let health = s.request(Method::GET, "/healthz", None, None).await;
    assert_eq!((health.status, health.body["status"].as_str()), (200, Some("ok")));

    for token in [None, Some("wrong"), Some("")] {
        let r = s.request(Method::GET, "/api/v1/providers", None, token).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "{token:?}");
        let r = s
            .request(
                Method::POST,
                "/api/v1/providers",
                Some(b"{\"type\":\"generic\",\"namespace\":\"a\",\"name\":\"b\"}".to_vec()),
                token,
            )
            .await;
        assert_eq!(r.status, 401);
        let r = s.request(Method::DELETE, "/api/v1/providers/x", None, token).await;
        assert_eq!(r.status, 401);
    }
    assert!(s.get("/api/v1/providers").await.body["total"] == 0, "unauthenticated writes changed nothing");
    let r = s.request(Method::GET, "/api/v1/providers", None, Some(TOKEN)).await;
    assert_eq!(r.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn token_create_mints_a_working_token_printed_alone_and_stored_as_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let out = command(dir.path()).args(["token", "create", "--name", "ci"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on stdout: {stdout:?}");
    let token = lines[0];
    assert!(token.starts_with("gry_") && token.len() > 40);
    let r = s.request(Method::GET, "/api/v1/clients", None, Some(token)).await;
    assert_eq!(r.status, 200, "the new token works on the running server");
    s.stop().await;

    let db = std::fs::read(dir.path().join("grantry.db")).unwrap();
    let wal = std::fs::read(dir.path().join("grantry.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(token), "the token is stored only as a hash");
        assert!(!text.contains(TOKEN), "the bootstrap token is stored only as a hash");
    }

    let out = command(dir.path()).args(["token", "create", "--name", " "]).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name must not be blank"));
}

#[tokio::test]
async fn without_a_bootstrap_token_a_random_admin_token_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line =
        tokio::time::timeout(std::time::Duration::from_secs(60), out.next_line()).await.unwrap().unwrap().unwrap();
    let token = line.rsplit(' ').next().unwrap().to_owned();
    assert!(line.contains("shown only this once") && token.starts_with("gry_"), "{line}");
    let base = loop {
        let l = err.next_line().await.unwrap().unwrap();
        if let Some(rest) = l.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let r = reqwest::Client::new().get(format!("{base}/api/v1/scopes")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    child.kill().await.unwrap();

    // A second start does not print another.
    let mut cmd = command(dir.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let l = err.next_line().await.unwrap().unwrap();
        if l.contains("listening on") {
            break;
        }
    }
    child.kill().await.unwrap();
    let rest = child.wait_with_output().await.unwrap();
    assert!(!String::from_utf8_lossy(&rest.stdout).contains("gry_"));
}

#[tokio::test]
async fn grantry_database_url_moves_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("elsewhere.db");
    let url = format!("sqlite://{}", db.display());
    let s = Server::start_in(dir.path(), &[("GRANTRY_DATABASE_URL", &url)])
        .await
        .unwrap_or_else(|r| panic!("{}", r.stderr));
    s.create("providers", crate::harness::slack_provider()).await;
    s.stop().await;
    assert!(db.exists(), "the database is where GRANTRY_DATABASE_URL says");
    assert!(!dir.path().join("grantry.db").exists());

    let refused = Server::start_in(dir.path(), &[("GRANTRY_DATABASE_URL", "postgres://localhost/grantry")])
        .await
        .err()
        .expect("must refuse");
    assert!(refused.stderr.contains("PostgreSQL support is not built yet"), "{}", refused.stderr);
}
