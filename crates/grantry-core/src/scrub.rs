//! Scrubbing of text that came from outside (a provider's error, a failed
//! request's message) before it is stored, returned, notified or logged: every
//! secret the flow knows is replaced, in its plain, URL-encoded and base64
//! forms (docs/concepts.md §6).

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The secret values of one flow, in every form they may take in a text.
#[derive(Default)]
pub struct Scrubber {
    forms: Vec<SecretString>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} forms)", self.forms.len())
    }
}

impl Scrubber {
    /// Adds a secret value; values shorter than three characters would mangle
    /// ordinary words and are not secrets anyone issues.
    pub fn add(&mut self, secret: &str) -> &mut Self {
        if secret.chars().count() < 3 {
            return self;
        }
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let mut forms = vec![
            secret.to_owned(),
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
            crate::template::url::encode_component(secret),
        ];
        forms.extend(engines.iter().map(|e| e.encode(secret)));
        for form in forms {
            if !self.forms.iter().any(|f| f.expose_secret() == form) {
                self.forms.push(SecretString::from(form));
            }
        }
        self
    }

    /// Adds the HTTP Basic credentials `user:password` (as Grantry sends them).
    pub fn add_basic(&mut self, user: &str, password: &str) -> &mut Self {
        self.add(&format!("{user}:{password}"));
        let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        self.add(&format!("{}:{}", encoded(user), encoded(password)))
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        // Longer forms first, so a form that contains another goes whole.
        let mut forms: Vec<&str> = self.forms.iter().map(|f| f.expose_secret()).collect();
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        for form in forms {
            if out.contains(form) {
                out = out.replace(form, REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_replaced() {
        let mut s = Scrubber::default();
        s.add("r3fresh/tok+en=").add("ab");
        let b64 = base64::engine::general_purpose::STANDARD.encode("r3fresh/tok+en=");
        let text = format!("a r3fresh/tok+en= b r3fresh%2Ftok%2Ben%3D c {b64} d ab");
        assert_eq!(s.scrub(&text), "a [redacted] b [redacted] c [redacted] d ab");
    }
}
