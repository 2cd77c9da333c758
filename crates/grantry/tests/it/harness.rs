//! Starts `grantry serve` as a child process and talks to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TOKEN: &str = "test-admin-token-0123456789abcdef-0123";

/// What every test server gets unless a test says otherwise: the tests'
/// providers live on loopback, and their integrations' return address is
/// `https://app.example`.
pub const DEFAULT_ENV: &[(&str, &str)] =
    &[("GRANTRY_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128"), ("GRANTRY_RETURN_TO_ORIGINS", "https://app.example")];

pub struct Response {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Response {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field_errors(&self, field: &str) -> Vec<String> {
        self.body["error"]["fields"][field]
            .as_array()
            .map(|a| a.iter().map(|m| m.as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    }
}

pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    _temp: Option<Arc<tempfile::TempDir>>,
    http: reqwest::Client,
    /// Every response body this server sent to the tests, for secret scans.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Everything the server logged.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// How a start ended when the server refused to run.
pub struct Refused {
    pub status: std::process::ExitStatus,
    pub stderr: String,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_grantry")
}

/// A command for the binary with a clean Grantry environment.
pub fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("GRANTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("GRANTRY_DATA_DIR", data_dir);
    cmd
}

impl Server {
    pub async fn start() -> Server {
        let temp = Arc::new(tempfile::tempdir().unwrap());
        let mut server =
            Server::start_in(temp.path(), &[]).await.unwrap_or_else(|r| panic!("server refused: {}", r.stderr));
        server._temp = Some(temp);
        server
    }

    /// Starts on a new temporary data folder with extra environment.
    pub async fn start_with(env: &[(&str, &str)]) -> Server {
        let temp = Arc::new(tempfile::tempdir().unwrap());
        let mut server =
            Server::start_in(temp.path(), env).await.unwrap_or_else(|r| panic!("server refused: {}", r.stderr));
        server._temp = Some(temp);
        server
    }

    /// Starts on `data_dir` with extra environment; `Err` when the process exits instead.
    pub async fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Result<Server, Refused> {
        let mut cmd = command(data_dir);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("GRANTRY_BOOTSTRAP_TOKEN", TOKEN)
            .env("GRANTRY_LOG", "info")
            .envs(DEFAULT_ENV.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn grantry");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(stderr).lines();
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return Some(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
            None
        })
        .await
        .expect("grantry did not start within 60 s");
        let Some(base) = found else {
            let status = child.wait().await.unwrap();
            let stderr = log.lock().unwrap().join("\n");
            return Err(Refused { status, stderr });
        };
        let log_bg = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log_bg.lock().unwrap().push(line);
            }
        });
        Ok(Server {
            child,
            base,
            data_dir: data_dir.to_owned(),
            _temp: None,
            http: reqwest::Client::new(),
            seen: Arc::new(Mutex::new(Vec::new())),
            log,
        })
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>, token: Option<&str>) -> Response {
        self.request_with(method, path, body, token, &[]).await
    }

    /// A request with extra headers.
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response { status, body, text, headers }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None, Some(TOKEN)).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(body.to_string().into_bytes()), Some(TOKEN)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(body.to_string().into_bytes()), Some(TOKEN)).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path, None, Some(TOKEN)).await
    }

    /// Creates a record and returns it, failing the test on any error.
    pub async fn create(&self, kind: &str, body: Value) -> Value {
        let r = self.post(&format!("/api/v1/{kind}"), body).await;
        assert_eq!(r.status, 201, "create {kind}: {}", r.text);
        r.body
    }

    pub async fn count(&self, kind: &str) -> u64 {
        self.get(&format!("/api/v1/{kind}?per_page=1")).await.body["total"].as_u64().unwrap()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Mints an API token of `role` through the API, as the admin.
pub async fn new_token(s: &Server, role: &str) -> String {
    let r = s.post("/api/v1/api-tokens", serde_json::json!({"name": format!("{role} token"), "role": role})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["token"].as_str().unwrap().to_owned()
}

/// A typical oauth2 provider.
pub fn slack_provider() -> Value {
    serde_json::json!({
        "type": "oauth2",
        "namespace": "Slack",
        "name": "Slack",
        "authorization_endpoint": "https://slack.com/oauth/v2/authorize",
        "token_endpoint": "https://slack.com/api/oauth.v2.access",
        "scope_separator": ",",
        "refresh_token_strategy": "default"
    })
}

/// Where a browser ends up after following redirects; it stops at the
/// `app.example` host that tests use as an integration's return address.
pub struct Landing {
    pub url: String,
    pub status: u16,
    pub body: String,
}

impl Landing {
    pub fn param(&self, key: &str) -> Option<String> {
        let url = url::Url::parse(&self.url).ok()?;
        url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
    }
}

/// Follows redirects like a browser with cookies, stopping before `app.example`.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().host_str() == Some("app.example") || attempt.previous().len() > 15 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .unwrap()
}

pub async fn visit(client: &reqwest::Client, url: &str) -> Landing {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let url = match response.headers().get("location") {
        Some(location) if status / 100 == 3 => location.to_str().unwrap().to_owned(),
        _ => response.url().to_string(),
    };
    let body = response.text().await.unwrap_or_default();
    Landing { url, status, body }
}
