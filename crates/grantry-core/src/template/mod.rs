//! Liquid templates (docs/concepts.md §3): parsing on save, rendering with lenient
//! variables (a missing variable renders as an empty string), the filters
//! Grantry adds to standard Liquid, and the fences of docs/concepts.md §3.3–3.6: a render budget
//! (`engine`), where each variable may go (`Position`), and URL templates
//! that keep their host (`url`).

mod engine;
mod lex;
mod safe;
pub mod url;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use liquid_core::model::{KStringCow, ValueView};
use liquid_core::{
    Display_filter, Expression, Filter, FilterParameters, FilterReflection, FromFilterParameters, ParseFilter, Result,
    Runtime, Value,
};
use md5::Digest as _;

pub use engine::{MAX_ITERATIONS, MAX_OUTPUT, MAX_TIME};
pub use url::HostParameter;

/// The one parser, built once: building it registers every tag and filter.
fn parser() -> &'static liquid::Parser {
    static PARSER: OnceLock<Option<liquid::Parser>> = OnceLock::new();
    PARSER
        .get_or_init(|| {
            let arithmetic = safe::Arithmetic::ALL.into_iter().map(engine::own);
            engine::build(
                arithmetic
                    .chain([
                        engine::own(Base64Encode),
                        engine::own(Base64Decode),
                        engine::own(Md5),
                        engine::own(Sha256),
                        engine::own(HmacSha256),
                        engine::own(UrlEncode),
                        // In place of the standard ones (see `safe`).
                        engine::own(safe::Replace),
                        engine::own(safe::Join),
                        engine::own(safe::Abs),
                        engine::own(safe::Date),
                        engine::own(safe::Uniq),
                        engine::own(safe::Slice),
                    ])
                    .collect(),
            )
            .ok()
        })
        .as_ref()
        .unwrap_or_else(|| unreachable_parser())
}

// The builder only fails on a broken partials source, which Grantry does not use.
#[allow(clippy::panic)]
fn unreachable_parser() -> &'static liquid::Parser {
    panic!("the Liquid parser could not be built")
}

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// It does not parse, or its result is not usable where it goes.
    Invalid(String),
    /// It went over the render budget (`template_too_expensive`).
    TooExpensive(String),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Invalid(m) => f.write_str(m),
            RenderError::TooExpensive(m) => write!(f, "is too expensive to render: it {m}"),
        }
    }
}

/// Checks that `text` parses as a Liquid template. The error is a sentence
/// fit for a validation message.
pub fn check(text: &str) -> std::result::Result<(), String> {
    parse(text).map(|_| ())
}

/// How deep blocks may nest: Liquid's parser recurses per level, and a
/// template nested thousands deep would overflow a worker thread's stack.
pub const MAX_NESTING: usize = 16;

/// Parses `text`, refusing templates nested deeper than `MAX_NESTING` first.
fn parse(text: &str) -> std::result::Result<liquid::Template, String> {
    let depth = lex::nesting(text).map_err(|m| format!("is not a valid template: it {m}"))?;
    if depth > MAX_NESTING {
        return Err(format!(
            "is not a valid template: its blocks nest {depth} deep; at most {MAX_NESTING} are allowed"
        ));
    }
    parser().parse(text).map_err(|e| describe(&e))
}

/// The time one request may spend rendering templates, over all of them: the
/// templates tried on save (an import's records included), or those of one
/// flow step or proxied request. Many templates each just under the render
/// budget would otherwise hold a worker for seconds or minutes.
pub const MAX_REQUEST_TIME: Duration = Duration::from_millis(250);

/// What one request has spent rendering templates.
#[derive(Debug, Default)]
pub struct RequestBudget {
    spent_micros: AtomicU64,
}

/// Runs one render within what is left of `budget` (and at most `MAX_TIME`),
/// adding the time it took.
fn spend<T>(
    budget: &RequestBudget,
    render: impl FnOnce(Duration) -> std::result::Result<T, RenderError>,
) -> std::result::Result<T, RenderError> {
    let spent = Duration::from_micros(budget.spent_micros.load(Ordering::Relaxed));
    let Some(left) = MAX_REQUEST_TIME.checked_sub(spent).filter(|d| !d.is_zero()) else {
        return Err(RenderError::TooExpensive(format!(
            "comes after templates of this request that took the {} ms allowed to render them all",
            MAX_REQUEST_TIME.as_millis()
        )));
    };
    let started = Instant::now();
    let result = render(left.min(MAX_TIME));
    let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    budget.spent_micros.fetch_add(took, Ordering::Relaxed);
    result
}

/// Renders `text` once with no variables: a template whose literal loops or
/// strings already go over the budget is refused on save, and so is one that
/// finds the request's `RequestBudget` spent. The reason says how.
pub fn check_budget(text: &str, budget: &RequestBudget) -> std::result::Result<(), String> {
    match spend(budget, |time| render_within(text, &serde_json::Map::new(), time)) {
        Err(RenderError::TooExpensive(reason)) => Err(reason),
        _ => Ok(()),
    }
}

/// Renders `text` as one of the templates of a request that shares `budget`.
pub fn render_budgeted(
    text: &str,
    vars: &serde_json::Map<String, serde_json::Value>,
    budget: &RequestBudget,
) -> std::result::Result<String, RenderError> {
    if !is_template(text) {
        return Ok(text.to_owned());
    }
    spend(budget, |time| render_within(text, vars, time))
}

/// Whether `text` uses Liquid at all; plain strings skip the template engine.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Renders `text` with `vars`, within the budget; variables that are not
/// given render as "".
pub fn render(
    text: &str,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<String, RenderError> {
    if !is_template(text) {
        return Ok(text.to_owned());
    }
    render_within(text, vars, MAX_TIME)
}

fn render_within(
    text: &str,
    vars: &serde_json::Map<String, serde_json::Value>,
    time: Duration,
) -> std::result::Result<String, RenderError> {
    let template = parse(text).map_err(RenderError::Invalid)?;
    let globals = Lenient(to_object(vars));
    let mut out = engine::Capped(Vec::new());
    match engine::with_budget(time, || template.render_to(&mut out, &globals)) {
        Err(reason) => Err(RenderError::TooExpensive(reason)),
        // Liquid's message may quote the values a filter was given, secrets
        // among them: a render error says only that it failed.
        Ok(Err(_)) => {
            Err(RenderError::Invalid("could not be rendered: a tag or filter failed on the values it was given".into()))
        }
        Ok(Ok(())) => Ok(String::from_utf8_lossy(&out.0).into_owned()),
    }
}

fn describe(e: &liquid::Error) -> String {
    // liquid's messages span several lines with a source excerpt; the first line says what is wrong.
    let text = e.to_string();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid template").trim();
    format!("is not a valid template: {first}")
}

/// Where a template's result goes, which decides the variables it may use
/// (docs/concepts.md §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Any part of a URL template: no secret, no client identifier.
    Url,
    /// A query parameter of the authorize URL the resource owner's browser
    /// visits: the client identifier (OAuth puts it there as `client_id`), no secret.
    AuthorizeQuery,
    /// Headers, bodies and query parameters of requests Grantry sends to a
    /// provider's token, refresh or revocation endpoint, or to a connection's destination.
    Request,
}

/// Variables that hold secrets (docs/concepts.md §3.3), and `callback`, which holds the
/// values a generic callback captured.
pub const SECRET_VARIABLES: &[&str] = &[
    "secret",
    "access_token",
    "refresh_token",
    "id_token",
    "username",
    "password",
    "basic_auth",
    "key_value",
    "oauth_token",
    "oauth_token_secret",
    "callback",
];

impl Position {
    /// Whether a template in this position may use `variable`.
    pub fn allows(self, variable: &str) -> bool {
        match self {
            Position::Request => true,
            Position::AuthorizeQuery => !SECRET_VARIABLES.contains(&variable),
            Position::Url => !SECRET_VARIABLES.contains(&variable) && variable != "identifier",
        }
    }

    /// Where the value of a template of this position goes, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Position::Url => "a URL",
            Position::AuthorizeQuery => "the authorize URL",
            Position::Request => "a request",
        }
    }
}

/// The variables `text` uses that `position` does not allow, for the
/// validation message on save (rendering drops them anyway).
pub fn forbidden_variables(text: &str, position: Position) -> std::result::Result<Vec<String>, String> {
    let names: BTreeSet<String> = lex::variables(text)?;
    Ok(names.into_iter().filter(|v| !position.allows(v)).collect())
}

/// The variables a template in `position` sees: the others are not given to it at all.
pub fn visible(
    vars: &serde_json::Map<String, serde_json::Value>,
    position: Position,
) -> serde_json::Map<String, serde_json::Value> {
    vars.iter().filter(|(k, _)| position.allows(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn to_object(vars: &serde_json::Map<String, serde_json::Value>) -> liquid::Object {
    vars.iter().map(|(k, v)| (k.clone().into(), to_value(v))).collect()
}

fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::scalar(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::scalar(i),
            None => Value::scalar(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::scalar(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => Value::Object(to_object(o)),
    }
}

/// Globals that answer every top-level name, with nil for the missing ones, so
/// that `{{shop}}` without a `shop` renders empty instead of failing.
#[derive(Debug)]
struct Lenient(liquid::Object);

static NIL: Value = Value::Nil;

impl ValueView for Lenient {
    fn as_debug(&self) -> &dyn std::fmt::Debug {
        self
    }
    fn render(&self) -> liquid_core::model::DisplayCow<'_> {
        self.0.render()
    }
    fn source(&self) -> liquid_core::model::DisplayCow<'_> {
        self.0.source()
    }
    fn type_name(&self) -> &'static str {
        "object"
    }
    fn query_state(&self, state: liquid_core::model::State) -> bool {
        self.0.query_state(state)
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        self.0.to_kstr()
    }
    fn to_value(&self) -> Value {
        self.0.to_value()
    }
    fn as_object(&self) -> Option<&dyn liquid_core::ObjectView> {
        Some(self)
    }
}

impl liquid_core::ObjectView for Lenient {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.size()
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        liquid_core::ObjectView::keys(&self.0)
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        liquid_core::ObjectView::values(&self.0)
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        liquid_core::ObjectView::iter(&self.0)
    }
    fn contains_key(&self, _index: &str) -> bool {
        true
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        Some(liquid_core::ObjectView::get(&self.0, index).unwrap_or(&NIL))
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "base64_encode",
    description = "Base64-encodes a string (standard alphabet, padded).",
    parsed(Base64EncodeFilter)
)]
struct Base64Encode;

#[derive(Debug, Default, Display_filter)]
#[name = "base64_encode"]
struct Base64EncodeFilter;

impl Filter for Base64EncodeFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        Ok(Value::scalar(base64::engine::general_purpose::STANDARD.encode(input.to_kstr().as_bytes())))
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "base64_decode", description = "Decodes a base64 string.", parsed(Base64DecodeFilter))]
struct Base64Decode;

#[derive(Debug, Default, Display_filter)]
#[name = "base64_decode"]
struct Base64DecodeFilter;

impl Filter for Base64DecodeFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        let text = input.to_kstr();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim().as_bytes())
            .map_err(|_| liquid_core::Error::with_msg("base64_decode: the input is not base64"))?;
        Ok(Value::scalar(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "md5", description = "The MD5 digest of a string, in lowercase hex.", parsed(Md5Filter))]
struct Md5;

#[derive(Debug, Default, Display_filter)]
#[name = "md5"]
struct Md5Filter;

impl Filter for Md5Filter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        Ok(Value::scalar(hex(&md5::Md5::digest(input.to_kstr().as_bytes()))))
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "sha256", description = "The SHA-256 digest of a string, in lowercase hex.", parsed(Sha256Filter))]
struct Sha256;

#[derive(Debug, Default, Display_filter)]
#[name = "sha256"]
struct Sha256Filter;

impl Filter for Sha256Filter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        Ok(Value::scalar(hex(&sha2::Sha256::digest(input.to_kstr().as_bytes()))))
    }
}

#[derive(Debug, FilterParameters)]
struct HmacArgs {
    #[parameter(description = "The HMAC key.", arg_type = "str")]
    key: Expression,
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "hmac_sha256",
    description = "The HMAC-SHA256 of a string under a key, in lowercase hex.",
    parameters(HmacArgs),
    parsed(HmacSha256Filter)
)]
struct HmacSha256;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "hmac_sha256"]
struct HmacSha256Filter {
    #[parameters]
    args: HmacArgs,
}

impl Filter for HmacSha256Filter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(args.key.as_bytes())
            .map_err(|_| liquid_core::Error::with_msg("hmac_sha256: unusable key"))?;
        mac.update(input.to_kstr().as_bytes());
        Ok(Value::scalar(hex(&mac.finalize().into_bytes())))
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "grantry_url_encode",
    description = "Percent-encodes a value for any part of a URL (Grantry adds it to every output of a URL template).",
    parsed(UrlEncodeFilter)
)]
struct UrlEncode;

#[derive(Debug, Default, Display_filter)]
#[name = "grantry_url_encode"]
struct UrlEncodeFilter;

impl Filter for UrlEncodeFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        Ok(Value::scalar(url::encode_component(&input.to_kstr())))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
