//! JSON text exactly as Python's `json.dumps` writes it with default settings (`", "` and `": "`
//! separators, `ensure_ascii=True`), so that output files match the official tools byte for byte.

/// A JSON string literal, ASCII-only, escaped as Python escapes it.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// `true` / `false`.
pub fn boolean(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// A list written with `", "` between items.
pub fn list<T>(items: &[T], write: impl Fn(&T) -> String) -> String {
    let inner: Vec<String> = items.iter().map(write).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_python() {
        assert_eq!(string("a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(string("é€"), r#""\u00e9\u20ac""#);
        assert_eq!(string("😀"), r#""\ud83d\ude00""#);
        assert_eq!(string("\u{1}\u{7f}"), r#""\u0001\u007f""#);
        assert_eq!(
            list(&[true, false], |b| boolean(*b).to_string()),
            "[true, false]"
        );
    }
}
