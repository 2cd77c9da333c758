//! A small lexer of Liquid source: text, `{{ output }}` and `{% tag %}`
//! pieces with their offsets, and the root variables a template names. It is
//! what lets Grantry judge a template before it runs (which variables it uses,
//! what sits in a URL's host), so it refuses what it cannot read for sure:
//! a `}}` or `%}` inside a quoted string.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Literal text (also the content of `{% raw %}`), written as it is.
    Text { start: usize, text: &'a str },
    /// `{{ … }}`: `inner` is what lies between the braces, dashes included.
    Output { start: usize, end: usize, inner: &'a str },
    /// `{% … %}`; the content of a `{% comment %}` is left out.
    Tag { start: usize, end: usize, name: &'a str, inner: &'a str },
}

/// Where a tag or output starting at `from` (just after its opening braces)
/// closes; quoted strings are skipped, and a closer inside one is refused.
fn close(text: &str, from: usize, closer: &str) -> Result<Option<usize>, String> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'\'') => {
                let end = text[i + 1..].find(q as char).map(|e| i + 1 + e).unwrap_or(bytes.len());
                let quoted = &text[i + 1..end.min(bytes.len())];
                if quoted.contains("}}") || quoted.contains("%}") {
                    return Err("cannot hold `}}` or `%}` inside a quoted string".into());
                }
                i = end + 1;
            }
            _ if text[i..].starts_with(closer) => return Ok(Some(i)),
            _ => i += 1,
        }
    }
    Ok(None)
}

/// The first word of a tag: its name.
fn tag_name(inner: &str) -> &str {
    let trimmed = inner.trim_start_matches('-').trim_start();
    let end = trimmed.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(trimmed.len());
    &trimmed[..end]
}

/// Splits a template into pieces. Unclosed braces stay text (the Liquid parser refuses them).
pub(crate) fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut text_start = 0;
    while let Some(found) = text[at..].find('{').map(|i| at + i) {
        let rest = &text[found..];
        let (closer, is_tag) = if rest.starts_with("{{") {
            ("}}", false)
        } else if rest.starts_with("{%") {
            ("%}", true)
        } else {
            at = found + 1;
            continue;
        };
        let Some(close_at) = close(text, found + 2, closer)? else { break };
        if text_start < found {
            out.push(Piece::Text { start: text_start, text: &text[text_start..found] });
        }
        let inner = &text[found + 2..close_at];
        let end = close_at + 2;
        if !is_tag {
            out.push(Piece::Output { start: found, end, inner });
            at = end;
            text_start = end;
            continue;
        }
        let name = tag_name(inner);
        out.push(Piece::Tag { start: found, end, name, inner });
        at = end;
        text_start = end;
        if name == "raw" || name == "comment" {
            // Everything up to the matching end tag is not Liquid.
            let end_name = if name == "raw" { "endraw" } else { "endcomment" };
            let mut search = end;
            let found_end = loop {
                let Some(open) = text[search..].find("{%").map(|i| search + i) else { break None };
                let Some(c) = text[open + 2..].find("%}").map(|i| open + 2 + i) else { break None };
                if tag_name(&text[open + 2..c]) == end_name {
                    break Some((open, c + 2));
                }
                search = c + 2;
            };
            let Some((open, close_end)) = found_end else { break };
            if name == "raw" && end < open {
                out.push(Piece::Text { start: end, text: &text[end..open] });
            }
            out.push(Piece::Tag { start: open, end: close_end, name: end_name, inner: &text[open + 2..close_end - 2] });
            at = close_end;
            text_start = close_end;
        }
    }
    if text_start < text.len() {
        out.push(Piece::Text { start: text_start, text: &text[text_start..] });
    }
    Ok(out)
}

/// Blocks that open a level, and the tags that close them.
const OPENERS: &[&str] = &["if", "unless", "case", "for", "capture", "ifchanged", "raw", "comment", "tablerow"];

/// How deep the template's blocks nest.
pub(crate) fn nesting(text: &str) -> Result<usize, String> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for piece in pieces(text)? {
        if let Piece::Tag { name, .. } = piece {
            if OPENERS.contains(&name) {
                depth += 1;
                deepest = deepest.max(depth);
            } else if name.strip_prefix("end").is_some_and(|n| OPENERS.contains(&n)) {
                depth = depth.saturating_sub(1);
            }
        }
    }
    Ok(deepest)
}

/// The root variables named in a piece's expression: identifiers that are not
/// inside quotes, not a property (`a.b`: only `a`), not a filter name, and not
/// the tag's own name. Loop variables and keywords count too: the list errs on
/// the side of naming more.
fn roots_of(inner: &str, skip_first_word: bool, out: &mut BTreeSet<String>) {
    let bytes = inner.as_bytes();
    let mut i = 0;
    let mut previous: u8 = b' ';
    let mut first = skip_first_word;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            i = inner[i + 1..].find(c as char).map(|e| i + 2 + e).unwrap_or(bytes.len());
            previous = b'"';
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'?')) {
                i += 1;
            }
            let word = inner[start..i].trim_end_matches(['-', '?']);
            if !first && previous != b'.' && previous != b'|' {
                out.insert(word.to_owned());
            }
            first = false;
            previous = b'a';
            continue;
        }
        if !c.is_ascii_whitespace() {
            previous = c;
            // A number starts no identifier.
            if c.is_ascii_digit() {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                continue;
            }
        }
        i += 1;
    }
}

/// Every root variable a template names (lexically; see `roots_of`).
pub(crate) fn variables(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Output { inner, .. } => roots_of(inner.trim_matches('-'), false, &mut out),
            Piece::Tag { inner, name, .. } if name != "raw" && name != "comment" => {
                roots_of(inner.trim_matches('-'), true, &mut out)
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<String> {
        variables(text).unwrap().into_iter().collect()
    }

    #[test]
    fn variables_are_the_roots_of_outputs_and_tags() {
        assert_eq!(vars("https://{{ shop }}.example.com/{{ a.b | append: c }}"), ["a", "c", "shop"]);
        assert_eq!(vars("{% if secret == 'x' %}{{ 'secret' }}{% endif %}"), ["secret"]);
        assert_eq!(vars("{% assign t = refresh_token | base64_encode %}{{t}}"), ["refresh_token", "t"]);
        assert_eq!(vars("{{ x[key] }} {{ x['literal'] }}"), ["key", "x"]);
        assert_eq!(
            vars("{% raw %}{{ secret }}{% endraw %}{% comment %}{{ password }}{% endcomment %}"),
            Vec::<String>::new()
        );
        assert_eq!(vars("{{- callback.code -}} {{ 5 | plus: n }}"), ["callback", "n"]);
    }

    #[test]
    fn a_closer_inside_a_string_is_refused() {
        assert!(pieces("{{ p | append: \"}}\" }}").is_err());
        assert!(pieces("{% assign a = '%}' %}").is_err());
        assert!(pieces("{{ p | append: \"x\" }}").is_ok());
    }

    #[test]
    fn pieces_keep_their_offsets() {
        let p = pieces("a{{b}}c{%if x%}d{%endif%}").unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p[1], Piece::Output { start: 1, end: 6, inner: "b" });
        assert!(matches!(p[3], Piece::Tag { name: "if", .. }));
    }
}
