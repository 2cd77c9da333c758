//! URL templates keep their host (docs/concepts.md §3.4): the
//! scheme, host and port are literal text, except whole host labels taken from
//! declared `host_parameters` whose values must match a pattern; every other
//! value is percent-encoded for the part of the URL it lands in, so no value
//! can add a `/`, `?`, `#` or `@`, or move the URL elsewhere.

use serde_json::{Map, Value};

use super::lex::{pieces, Piece};
use super::RenderError;

/// The default pattern of a host parameter: one DNS label.
pub const DEFAULT_HOST_PATTERN: &str = "^[A-Za-z0-9-]{1,63}$";

/// A variable a URL template may put into its host (`{{shop}}.myshopify.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostParameter {
    pub key: String,
    /// A regular expression the whole value must match; the default is one DNS label.
    pub pattern: Option<String>,
}

impl HostParameter {
    /// The `host_parameters` field of a record (`[{"key", "pattern"}]`).
    pub fn list(value: Option<&Value>) -> Vec<HostParameter> {
        value
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let key = e.get("key")?.as_str()?.to_owned();
                let pattern = e.get("pattern").and_then(Value::as_str).filter(|p| !p.is_empty()).map(str::to_owned);
                Some(HostParameter { key, pattern })
            })
            .collect()
    }

    fn accepts(&self, value: &str) -> bool {
        let pattern = self.pattern.as_deref().unwrap_or(DEFAULT_HOST_PATTERN);
        let anchored = format!("^(?:{pattern})$");
        // Whatever the pattern says, a host label holds DNS characters only.
        let dns = !value.is_empty()
            && value.len() <= 253
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        dns && compile(&anchored).is_ok_and(|re| re.is_match(value))
    }
}

/// Compiles a host pattern with a size limit, so a pattern cannot be a bomb of its own.
pub fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 16)
        .build()
        .map_err(|e| format!("is not a usable regular expression: {}", e.to_string().lines().last().unwrap_or("")))
}

enum Authority<'a> {
    Text(&'a str),
    Host(&'a HostParameter),
}

/// The scheme and authority of a URL template, and where the rest begins.
fn split<'t, 'h>(text: &'t str, hosts: &'h [HostParameter]) -> Result<(Vec<Authority<'h>>, usize), String>
where
    't: 'h,
{
    let pieces = pieces(text)?;
    let lower = text.to_ascii_lowercase();
    let scheme_len: usize = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return Err("must start with http:// or https://: the scheme, host and port are never templated".into());
    };
    let mut parts = Vec::new();
    for piece in &pieces {
        match *piece {
            Piece::Text { start, text: literal } => {
                let from = scheme_len.saturating_sub(start).min(literal.len());
                if let Some(end) = literal[from..].find(['/', '?', '#', '\\']) {
                    parts.push(Authority::Text(&text[start..start + from + end]));
                    return Ok((parts, start + from + end));
                }
                parts.push(Authority::Text(literal));
            }
            Piece::Output { inner, .. } => {
                let name = inner.trim_matches('-').trim();
                match hosts.iter().find(|h| h.key == name) {
                    Some(host) => parts.push(Authority::Host(host)),
                    None => {
                        return Err(format!(
                            "puts `{{{{{}}}}}` into the host or port; only a variable listed in host_parameters may \
                             stand there, alone",
                            name
                        ))
                    }
                }
            }
            Piece::Tag { name, .. } => return Err(format!("has a `{{% {name} %}}` tag in the host or port")),
        }
    }
    Ok((parts, text.len()))
}

/// Tags that write values straight to the output, past the encoding of outputs.
const UNENCODED_TAGS: &[&str] = &["cycle", "ifchanged"];

/// Checks a URL template on save: literal scheme and host but for declared
/// host parameters, and no tag that writes values unencoded.
pub fn check(text: &str, hosts: &[HostParameter]) -> Result<(), String> {
    split(text, hosts)?;
    for piece in pieces(text)? {
        if let Piece::Tag { name, .. } = piece {
            if UNENCODED_TAGS.contains(&name) {
                return Err(format!("cannot use `{{% {name} %}}` in a URL: it writes values without encoding them"));
            }
        }
    }
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters, which
/// is safe in a path segment, a query and a fragment alike.
pub(crate) fn encode_component(text: &str) -> String {
    crate::oauth1::encode(text)
}

/// The rest of the template (path, query, fragment) with every output
/// passed through `grantry_url_encode`.
fn encoded_rest(text: &str, from: usize) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Text { start, text: literal } => {
                let end = start + literal.len();
                if end <= from {
                    continue;
                }
                out.push_str(&text[start.max(from)..end]);
            }
            Piece::Output { start, inner, .. } if start >= from => {
                let (open, close) = (
                    if inner.starts_with('-') { "{{-" } else { "{{" },
                    if inner.ends_with('-') { "-}}" } else { "}}" },
                );
                out.push_str(&format!("{open} {} | grantry_url_encode {close}", inner.trim_matches('-').trim()));
            }
            Piece::Tag { start, end, .. } if start >= from => out.push_str(&text[start..end]),
            _ => {}
        }
    }
    Ok(out)
}

/// Renders a URL template: the authority from literal text and checked host
/// parameters, the rest with encoded values; the result must be an absolute
/// http(s) URL on that authority with no `.` or `..` path segment.
pub fn render(
    text: &str,
    vars: &Map<String, Value>,
    hosts: &[HostParameter],
    budget: &super::RequestBudget,
) -> Result<String, RenderError> {
    let (parts, from) = split(text, hosts).map_err(RenderError::Invalid)?;
    let mut authority = String::new();
    for part in parts {
        match part {
            Authority::Text(t) => authority.push_str(t),
            Authority::Host(host) => {
                let value = vars.get(&host.key).and_then(Value::as_str).unwrap_or("");
                if !host.accepts(value) {
                    return Err(RenderError::Invalid(format!(
                        "host parameter `{}` is not a host name that matches its pattern",
                        host.key
                    )));
                }
                authority.push_str(value);
            }
        }
    }
    let rest = super::render_budgeted(&encoded_rest(text, from).map_err(RenderError::Invalid)?, vars, budget)?;
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let dots = path.split(['/', '\\']).any(|segment| {
        matches!(segment.to_ascii_lowercase().as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
    });
    if dots {
        return Err(RenderError::Invalid("renders a path with a `.` or `..` segment".into()));
    }
    let expected = url::Url::parse(&authority).ok();
    let url = url::Url::parse(&format!("{authority}{rest}")).ok();
    match (expected, url) {
        (Some(expected), Some(url))
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty())
                && url.host() == expected.host()
                && url.port_or_known_default() == expected.port_or_known_default() =>
        {
            Ok(url.to_string())
        }
        _ => Err(RenderError::Invalid("does not render to an absolute http(s) URL with a host".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn shop() -> Vec<HostParameter> {
        vec![HostParameter { key: "shop".into(), pattern: None }]
    }

    #[test]
    fn values_are_encoded_for_their_position() {
        let v = vars(json!({"p": "a/b?c#d", "q": "x&y=z", "shop": "acme"}));
        assert_eq!(
            render("https://{{shop}}.myshopify.com/{{p}}/x?q={{q}}#{{p}}", &v, &shop(), &Default::default()).unwrap(),
            "https://acme.myshopify.com/a%2Fb%3Fc%23d/x?q=x%26y%3Dz#a%2Fb%3Fc%23d"
        );
    }

    #[test]
    fn the_host_cannot_be_moved() {
        let evil = vars(json!({"shop": "evil.example/x?"}));
        assert!(render("https://{{shop}}.myshopify.com/a", &evil, &shop(), &Default::default()).is_err());
        assert!(check("https://{{other}}.example.com/", &shop()).is_err());
        assert!(check("http://127.0.0.1:{{port}}/token", &[]).is_err());
        assert!(check("{{base}}/token", &[]).is_err());
        assert!(check("https://a.example/{% cycle x %}", &[]).is_err());
        assert!(check("https://{% if x %}a{% endif %}.example/", &[]).is_err());
        assert!(check("javascript:alert(1)", &[]).is_err());
        let at = vars(json!({"p": "@evil.example"}));
        assert_eq!(
            render("https://api.example/{{p}}", &at, &[], &Default::default()).unwrap(),
            "https://api.example/%40evil.example"
        );
        let strict = vec![HostParameter { key: "shop".into(), pattern: Some("[a-z]+".into()) }];
        assert!(
            render("https://{{shop}}.example/", &vars(json!({"shop": "acme1"})), &strict, &Default::default()).is_err()
        );
        assert!(
            render("https://{{shop}}.example/", &vars(json!({"shop": "acme"})), &strict, &Default::default()).is_ok()
        );
    }

    #[test]
    fn dot_segments_are_refused() {
        for p in ["..", "."] {
            let v = vars(json!({"p": p}));
            assert!(render("https://api.example/base/{{p}}/x", &v, &[], &Default::default()).is_err(), "{p}");
        }
        assert!(render("https://api.example/base/../x", &Map::new(), &[], &Default::default()).is_err());
        // An encoded value cannot become a dot segment.
        let v = vars(json!({"p": "%2e%2e"}));
        assert_eq!(
            render("https://api.example/{{p}}", &v, &[], &Default::default()).unwrap(),
            "https://api.example/%252e%252e"
        );
    }
}
