//! Every type that holds a secret formats without it (docs/concepts.md §6):
//! each is built with the same marker in every secret position, and neither
//! `{:?}` nor `{:#?}` may show the marker. A type added with a derived `Debug`
//! over a secret belongs here.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use crate::access::{Caller, Role};
use crate::flows::{Applied, FreshToken, Prepared, ProxyInput, SignInput};
use crate::input::Input;
use crate::oauth1::Signer;
use crate::oauth2::{parse_token_response, ClientAuth, Vars, STANDARD_POINTERS};
use crate::ports::{ApiToken, HttpMethod, HttpRequest, HttpResponse, PendingState};
use crate::{AuthMethod, Id, Kind, Record, RecordType, Sealed, SignatureMethod};

const MARK: &str = "S3CRET-marker-8f2c";

fn secret() -> SecretString {
    SecretString::from(MARK.to_owned())
}

fn assert_hidden(what: &str, value: &dyn std::fmt::Debug) {
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(!text.contains(MARK), "{what} shows a secret: {text}");
        assert!(!text.contains("8f2c"), "{what} shows part of a secret: {text}");
    }
}

#[test]
fn no_type_that_holds_a_secret_formats_it() {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let header = vec![("Authorization".to_owned(), format!("Bearer {MARK}"))];

    assert_hidden("FreshToken", &FreshToken::new(secret(), "Bearer".into(), Value::Null));
    assert_hidden("Applied (header)", &Applied::header("Authorization", MARK));
    assert_hidden("Applied (query)", &Applied::query("api_key", MARK));

    let mut vars = Vars::default();
    vars.set_secret("secret", secret()).set_secret("refresh_token", secret());
    assert_hidden("Vars", &vars);

    let request = HttpRequest {
        method: HttpMethod::Post,
        url: format!("https://provider.example/token?client_secret={MARK}"),
        headers: header.clone(),
        body: Some(format!("refresh_token={MARK}").into_bytes()),
    };
    assert_hidden("HttpRequest", &request);
    let answer = HttpResponse {
        status: 200,
        content_type: "application/json".into(),
        body: json!({"access_token": MARK, "refresh_token": MARK, "id_token": MARK}).to_string().into_bytes(),
    };
    assert_hidden("HttpResponse", &answer);
    let tokens = parse_token_response(&answer, &STANDARD_POINTERS, now).ok().unwrap();
    assert_hidden("TokenSet", &tokens);

    assert_hidden("ClientAuth", &ClientAuth { method: AuthMethod::ClientSecretBasic, identifier: MARK, secret: MARK });
    let signer = Signer {
        consumer_key: MARK,
        consumer_secret: MARK,
        token: Some(MARK),
        token_secret: MARK,
        method: SignatureMethod::HmacSha1,
        timestamp: "1",
        nonce: "n",
        realm: None,
        extra: &[("oauth_verifier", MARK)],
    };
    assert_hidden("Signer", &signer);

    let sign = SignInput {
        method: "POST".into(),
        url: format!("https://api.example/x?key={MARK}"),
        headers: header.clone(),
        body: Some(MARK.into()),
    };
    assert_hidden("SignInput", &sign);
    let proxy = ProxyInput {
        method: "GET".into(),
        path: "items".into(),
        query: Some(format!("token={MARK}")),
        headers: header.clone(),
        body: MARK.as_bytes().to_vec(),
    };
    assert_hidden("ProxyInput", &proxy);
    assert_hidden("Prepared", &Prepared { request, refreshable: Some(Id::generate()) });

    let mut input = Input::default();
    input.secrets.insert("secret", Some(secret()));
    assert_hidden("Input", &input);

    let token = ApiToken {
        id: Id::generate(),
        name: "ci".into(),
        role: Role::Integration,
        token_hash: MARK.into(),
        created_at: now,
        expires_at: None,
    };
    assert_hidden("ApiToken", &token);
    let pending = PendingState {
        state_hash: MARK.into(),
        authorization_id: Id::generate(),
        code_verifier: Some(Sealed(MARK.into())),
        return_to: None,
        binding_hash: Some(MARK.into()),
        created_at: now,
        expires_at: now,
    };
    assert_hidden("PendingState", &pending);

    let mut secrets = BTreeMap::new();
    secrets.insert("secret".to_owned(), Sealed(MARK.into()));
    let record = Record {
        id: Id::generate(),
        kind: Kind::Client,
        rtype: RecordType::Client(crate::ClientType::RemoteOauth),
        namespace: "N".into(),
        name: "c".into(),
        data: Map::new(),
        refs: BTreeMap::new(),
        secrets,
        origin: crate::Origin::Default,
        created_at: now,
        updated_at: now,
    };
    assert_hidden("Record", &record);
    assert_hidden("Caller", &Caller::api_token(Id::generate(), "ci".into(), Role::Admin, None));
}

#[test]
fn the_marker_would_be_found_if_shown() {
    // The check itself can fail: a plain String holding the marker is caught.
    let shown = std::panic::catch_unwind(|| assert_hidden("String", &MARK.to_owned()));
    assert!(shown.is_err());
}
