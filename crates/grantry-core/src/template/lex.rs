//! A small lexer of Liquid source: text, `{{ output }}` and `{% tag %}`
//! pieces with their offsets, and the root variables a template names. It is
//! what lets Grantry judge a template before it runs (which variables it uses,
//! what sits in a URL's host, how deep it nests), so it refuses whatever it
//! cannot read exactly as Liquid does: an opener inside a tag or a quoted
//! string, a closer inside a quoted string, an opener that never closes.
//! (Grantry's Liquid has no `raw` or `comment`, whose content Liquid reads
//! differently.)

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Literal text, written as it is.
    Text { start: usize, text: &'a str },
    /// `{{ … }}`: `inner` is what lies between the braces, dashes included.
    Output { start: usize, end: usize, inner: &'a str },
    /// `{% … %}`.
    Tag { start: usize, end: usize, name: &'a str, inner: &'a str },
}

const UNREADABLE: &str =
    "cannot hold `{{`, `{%` inside a tag or a quoted string, nor `}}`, `%}` inside a quoted string";

/// Where a tag or output starting at `from` (just after its opening braces)
/// closes. Quoted strings are skipped; an opener anywhere inside, or a closer
/// inside a quoted string, is refused, and so is a tag that never closes.
fn close(text: &str, from: usize, closer: &[u8]) -> Result<usize, String> {
    let bytes = text.as_bytes();
    let opens = |i: usize| bytes.get(i) == Some(&b'{') && matches!(bytes.get(i + 1), Some(b'{' | b'%'));
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'\'') => {
                let end = bytes[i + 1..].iter().position(|b| *b == q).map(|e| i + 1 + e).unwrap_or(bytes.len());
                let quoted = &bytes[i + 1..end];
                if quoted.windows(2).any(|w| matches!(w, b"}}" | b"%}" | b"{{" | b"{%")) {
                    return Err(UNREADABLE.into());
                }
                i = end + 1;
            }
            _ if bytes[i..].starts_with(closer) => return Ok(i),
            _ if opens(i) => return Err(UNREADABLE.into()),
            _ => i += 1,
        }
    }
    Err("has a `{{` or `{%` that is never closed".into())
}

/// The first word of a tag: its name.
fn tag_name(inner: &str) -> &str {
    let trimmed = inner.trim_start_matches('-').trim_start();
    let end = trimmed.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(trimmed.len());
    &trimmed[..end]
}

/// Splits a template into pieces.
pub(crate) fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    let mut text_start = 0;
    while let Some(found) = bytes[at..].iter().position(|b| *b == b'{').map(|i| at + i) {
        let (closer, is_tag): (&[u8], bool) = match bytes.get(found + 1) {
            Some(b'{') => (b"}}", false),
            Some(b'%') => (b"%}", true),
            _ => {
                at = found + 1;
                continue;
            }
        };
        let close_at = close(text, found + 2, closer)?;
        if text_start < found {
            out.push(Piece::Text { start: text_start, text: &text[text_start..found] });
        }
        let inner = &text[found + 2..close_at];
        let end = close_at + 2;
        if is_tag {
            out.push(Piece::Tag { start: found, end, name: tag_name(inner), inner });
        } else {
            out.push(Piece::Output { start: found, end, inner });
        }
        at = end;
        text_start = end;
    }
    if text_start < text.len() {
        out.push(Piece::Text { start: text_start, text: &text[text_start..] });
    }
    Ok(out)
}

/// Blocks that open a level; `end<name>` closes it.
const OPENERS: &[&str] = &["if", "unless", "case", "for", "capture", "ifchanged", "raw", "comment", "tablerow"];

/// How deep the template nests: blocks, plus the brackets and parentheses
/// of the expression inside each tag or output.
pub(crate) fn nesting(text: &str) -> Result<usize, String> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for piece in pieces(text)? {
        let inner = match piece {
            Piece::Tag { name, inner, .. } => {
                if OPENERS.contains(&name) {
                    depth += 1;
                } else if name.strip_prefix("end").is_some_and(|n| OPENERS.contains(&n)) {
                    depth = depth.saturating_sub(1);
                }
                inner
            }
            Piece::Output { inner, .. } => inner,
            Piece::Text { .. } => continue,
        };
        let (mut level, mut brackets) = (0usize, 0usize);
        for b in inner.bytes() {
            match b {
                b'[' | b'(' => {
                    level += 1;
                    brackets = brackets.max(level);
                }
                b']' | b')' => level = level.saturating_sub(1),
                _ => {}
            }
        }
        deepest = deepest.max(depth + brackets);
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
            // A number starts no identifier (`1..secret` is a number, a range and a name).
            if c.is_ascii_digit() {
                while i < bytes.len()
                    && (bytes[i].is_ascii_digit()
                        || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
                {
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
            Piece::Tag { inner, .. } => roots_of(inner.trim_matches('-'), true, &mut out),
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
        assert_eq!(vars("{{- callback.code -}} {{ 5 | plus: n }}"), ["callback", "n"]);
    }

    #[test]
    fn what_liquid_might_read_otherwise_is_refused() {
        for text in [
            "{{ p | append: \"}}\" }}",
            "{% assign a = '%}' %}",
            "{% if a %}{%{% endif %}",
            "{{ '{% endif %}' }}",
            "{{ p {{ q }}",
            "x {{ p",
        ] {
            assert!(pieces(text).is_err(), "{text}");
        }
        assert!(pieces("{{ p | append: \"x\" }} { not liquid } {{ 'é}}' | size }}").is_err());
        assert!(pieces("{{ p | append: \"é\" }} { not liquid }").is_ok());
    }

    #[test]
    fn nesting_counts_blocks_and_brackets() {
        assert_eq!(nesting("{% if a %}{% for x in y %}{{ a[b[c]] }}{% endfor %}{% endif %}").unwrap(), 4);
        assert_eq!(nesting("{{ a }}{% if a %}{% endif %}{% if b %}{% endif %}").unwrap(), 1);
    }

    #[test]
    fn pieces_keep_their_offsets() {
        let p = pieces("a{{b}}c{%if x%}d{%endif%}").unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p[1], Piece::Output { start: 1, end: 6, inner: "b" });
        assert!(matches!(p[3], Piece::Tag { name: "if", .. }));
    }
}
