//! Grantry's OAuth 1.0a signatures against an independent implementation,
//! Python's oauthlib, on randomly generated requests.

use grantry_core::oauth1::{sign, SignatureMethod, Signer};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The virtualenv `./scripts/test` prepares with the pinned oauthlib.
pub fn python() -> String {
    std::env::var("GRANTRY_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/test-venv/bin/python").to_owned())
}

fn text(rng: &mut impl Rng, max: usize) -> String {
    const ALPHABET: &[&str] = &[
        "a", "Z", "0", "9", "-", ".", "_", "~", " ", "+", "%", "&", "=", "/", "?", "!", "*", "'", "é", "€", "😀", ":",
        "@",
    ];
    let len = rng.gen_range(0..=max);
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect()
}

fn encode_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn signatures_match_oauthlib_on_random_requests() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5849);
    let methods = [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256, SignatureMethod::Plaintext];
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for i in 0..300 {
        let method = ["GET", "POST", "PUT", "DELETE"][rng.gen_range(0..4)];
        let scheme = if rng.gen_bool(0.5) { "http" } else { "https" };
        let port = match rng.gen_range(0..4) {
            0 => String::new(),
            1 => ":8443".into(),
            2 => {
                if scheme == "http" {
                    ":80".into()
                } else {
                    ":443".into()
                }
            }
            _ => ":3000".into(),
        };
        let mut url = format!("{scheme}://Api{i}.Example.COM{port}/v1/{}", encode_component(&text(&mut rng, 6)));
        let params: Vec<(String, String)> =
            (0..rng.gen_range(0..5)).map(|_| (text(&mut rng, 4), text(&mut rng, 6))).collect();
        if !params.is_empty() {
            let query: Vec<String> =
                params.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect();
            url = format!("{url}?{}", query.join("&"));
        }
        let url = url::Url::parse(&url).unwrap();
        let body = (method != "GET" && rng.gen_bool(0.5)).then(|| {
            let fields: Vec<(String, String)> =
                (0..rng.gen_range(1..4)).map(|_| (format!("f{}", text(&mut rng, 3)), text(&mut rng, 5))).collect();
            fields
                .iter()
                .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
                .collect::<Vec<_>>()
                .join("&")
        });
        let consumer_key = format!("ck{}", rng.gen_range(0..1_000_000));
        let consumer_secret = text(&mut rng, 10);
        let token = rng.gen_bool(0.7).then(|| format!("tok{}", rng.gen_range(0..1_000_000)));
        let token_secret = if token.is_some() { text(&mut rng, 10) } else { String::new() };
        let signature_method = methods[rng.gen_range(0..3)];
        let timestamp = rng.gen_range(1_000_000_000u64..2_000_000_000).to_string();
        let nonce: String = (0..32).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect();
        let realm = rng.gen_bool(0.3).then(|| "Example".to_owned());
        let signer = Signer {
            consumer_key: &consumer_key,
            consumer_secret: &consumer_secret,
            token: token.as_deref(),
            token_secret: &token_secret,
            method: signature_method,
            timestamp: &timestamp,
            nonce: &nonce,
            realm: realm.as_deref(),
            extra: &[],
        };
        ours.push(Value::String(sign(&signer, method, &url, body.as_deref()).signature));
        cases.push(json!({
            "method": method, "url": url.as_str(), "body": body, "consumer_key": consumer_key, "consumer_secret": consumer_secret,
            "token": token, "token_secret": token_secret, "signature_method": signature_method.as_str(),
            "timestamp": timestamp, "nonce": nonce, "realm": realm
        }));
    }
    let oracle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oauth1/sign_oracle.py");
    let mut child = tokio::process::Command::new(python())
        .arg(oracle)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the test virtualenv (./scripts/test makes it)");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(serde_json::to_string(&cases).unwrap().as_bytes()).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "oauthlib failed: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "case {i}: {}", cases[i]);
    }
}
