//! Liquid templates (SPEC §3): parsing on save, rendering with lenient
//! variables (a missing variable renders as an empty string) and the filters
//! Grantry adds to standard Liquid.

use std::sync::OnceLock;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use liquid_core::model::{KStringCow, ValueView};
use liquid_core::{
    Display_filter, Expression, Filter, FilterParameters, FilterReflection, FromFilterParameters, ParseFilter, Result,
    Runtime, Value,
};
use md5::Digest as _;

/// The one parser, built once: building it registers every tag and filter.
fn parser() -> &'static liquid::Parser {
    static PARSER: OnceLock<Option<liquid::Parser>> = OnceLock::new();
    PARSER
        .get_or_init(|| {
            liquid::ParserBuilder::with_stdlib()
                .filter(Base64Encode)
                .filter(Base64Decode)
                .filter(Md5)
                .filter(Sha256)
                .filter(HmacSha256)
                .build()
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

/// Checks that `text` parses as a Liquid template. The error is a sentence
/// fit for a validation message.
pub fn check(text: &str) -> std::result::Result<(), String> {
    parser().parse(text).map(|_| ()).map_err(|e| describe(&e))
}

/// Whether `text` uses Liquid at all; plain strings skip the template engine.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Renders `text` with `vars`; variables that are not given render as "".
pub fn render(text: &str, vars: &serde_json::Map<String, serde_json::Value>) -> std::result::Result<String, String> {
    if !is_template(text) {
        return Ok(text.to_owned());
    }
    let template = parser().parse(text).map_err(|e| describe(&e))?;
    let globals = Lenient(to_object(vars));
    template.render(&globals).map_err(|e| describe(&e))
}

fn describe(e: &liquid::Error) -> String {
    // liquid's messages span several lines with a source excerpt; the first line says what is wrong.
    let text = e.to_string();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid template").trim();
    format!("is not a valid template: {first}")
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
    fn a_broken_template_is_refused_with_a_reason() {
        let err = check("https://{{ shop").unwrap_err();
        assert!(err.starts_with("is not a valid template"), "{err}");
        assert!(check("{{ x | no_such_filter }}").is_err());
        assert!(check("plain text").is_ok());
    }
}
