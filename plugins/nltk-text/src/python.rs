//! Python's string and `re` semantics, where the official checker relies on them and Rust's
//! differ: what counts as whitespace, a word character or a cased letter.

use fancy_regex::Regex;

use crate::python_tables;

/// Python's `\w`: letters and numbers of any script, and `_` (Rust's `\w` also takes combining
/// marks, which Python does not, so Indic words would be counted differently).
pub const WORD: &str = r"\p{L}\p{N}_";

/// Python's `str.isspace()`: Unicode White_Space plus the four ASCII information separators.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `str.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `str.rstrip()`.
pub fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
}

/// `str.split()` with no argument: runs of whitespace separate, empty pieces dropped.
pub fn split_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|piece| !piece.is_empty())
}

/// `str.lower()` (full case mapping, like Python).
pub fn lower(s: &str) -> String {
    s.to_lowercase()
}

fn is_titlecase(c: char) -> bool {
    !c.is_uppercase()
        && !c.is_lowercase()
        && c.to_uppercase().ne(std::iter::once(c))
        && c.to_lowercase().ne(std::iter::once(c))
}

/// `str.isupper()`: at least one cased character and no lowercase or titlecase one.
pub fn is_upper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// `str.islower()`: at least one cased character and no uppercase or titlecase one.
pub fn is_lower(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_lowercase();
    }
    cased
}

/// `string.punctuation`.
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// `s.strip(chars)`.
pub fn strip_chars<'s>(s: &'s str, chars: &str) -> &'s str {
    s.trim_matches(|c| chars.contains(c))
}

/// `s.lstrip(chars)`.
pub fn lstrip_chars<'s>(s: &'s str, chars: &str) -> &'s str {
    s.trim_start_matches(|c| chars.contains(c))
}

/// `s.rstrip(chars)`.
pub fn rstrip_chars<'s>(s: &'s str, chars: &str) -> &'s str {
    s.trim_end_matches(|c| chars.contains(c))
}

/// `s.translate(str.maketrans('', '', chars))`: `s` without any of `chars`.
pub fn remove_chars(s: &str, chars: &str) -> String {
    s.chars().filter(|c| !chars.contains(*c)).collect()
}

/// Whether `c` is in `table`, sorted non-overlapping inclusive ranges (the generated tables).
pub fn in_ranges(table: &[(char, char)], c: char) -> bool {
    table
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `c.isdigit()` (Python 3.11's Unicode tables: decimal digits plus superscripts, circled digits
/// and the like; not Roman numerals or fractions, which Rust's `is_numeric` takes).
pub fn is_digit_char(c: char) -> bool {
    in_ranges(python_tables::DIGIT, c)
}

/// `s.isdigit()`: non-empty and every character a digit.
pub fn is_digit(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_digit_char)
}

/// `c.isdecimal()`: what Python's `\d` matches (Unicode decimal digits only).
pub fn is_decimal_char(c: char) -> bool {
    in_ranges(python_tables::DECIMAL, c)
}

/// The value of a decimal digit of any script (`int(c)`), or `None` for another character. Each
/// script's digits are a run of ten from its zero, and the table's ranges start at a zero.
pub fn decimal_digit(c: char) -> Option<u32> {
    let index = python_tables::DECIMAL.partition_point(|&(_, high)| high < c);
    let &(low, high) = python_tables::DECIMAL.get(index)?;
    (low <= c && c <= high).then(|| (c as u32 - low as u32) % 10)
}

/// `c.isalpha()` (letters only: Rust's `is_alphabetic` also takes combining marks and letter-like
/// symbols such as circled letters).
pub fn is_alpha_char(c: char) -> bool {
    in_ranges(python_tables::ALPHA, c)
}

/// Translate a Python `re` pattern to fancy-regex syntax with Python's meanings of `\w`, `\W`,
/// `\s`, `\S`, `\b`, `\B`, `\Z`, `$` and `(?#comments)`. Patterns come from the checker itself and
/// from instruction arguments (keywords are regular expressions in the official checker).
pub fn translate(pattern: &str, multiline: bool) -> String {
    let word = format!("[{WORD}]");
    let not_word = format!("[^{WORD}]");
    let boundary = format!("(?:(?<={word})(?!{word})|(?<!{word})(?={word}))");
    let non_boundary = format!("(?:(?<={word})(?={word})|(?<!{word})(?!{word}))");
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (next, in_class) {
                    ('w', false) => out.push_str(&word),
                    ('W', false) => out.push_str(&not_word),
                    ('w', true) => out.push_str(WORD),
                    ('s', false) => out.push_str(r"[\s\x1c-\x1f]"),
                    ('S', false) => out.push_str(r"[^\s\x1c-\x1f]"),
                    ('s', true) => out.push_str(r"\s\x1c-\x1f"),
                    ('b', false) => out.push_str(&boundary),
                    ('B', false) => out.push_str(&non_boundary),
                    ('Z', false) => out.push_str(r"\z"),
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` or `^]` right after the opening bracket is literal in Python.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap());
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str(r"\]");
                }
            }
            '[' if in_class => out.push_str(r"\["),
            // Without MULTILINE, Python's `$` also matches before a final newline.
            '$' if !in_class && !multiline => out.push_str(r"(?=\n?\z)"),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '(' if !in_class && pattern_rest_starts(&chars, "?#") => {
                // Python's inline comment: skip to the closing parenthesis.
                for skipped in chars.by_ref() {
                    if skipped == ')' {
                        break;
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn pattern_rest_starts(chars: &std::iter::Peekable<std::str::Chars<'_>>, prefix: &str) -> bool {
    chars
        .clone()
        .take(prefix.chars().count())
        .eq(prefix.chars())
}

/// Compile a Python pattern; `ignore_case` and `multiline` are `re.IGNORECASE`/`re.MULTILINE`.
pub fn compile(pattern: &str, ignore_case: bool, multiline: bool) -> Result<Regex, String> {
    let mut flags = String::new();
    if ignore_case {
        flags.push('i');
    }
    if multiline {
        flags.push('m');
    }
    let translated = translate(pattern, multiline);
    let full = if flags.is_empty() {
        translated
    } else {
        format!("(?{flags}){translated}")
    };
    fancy_regex::RegexBuilder::new(&full)
        .backtrack_limit(10_000_000)
        .build()
        .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

/// Number of non-overlapping matches (`len(re.findall(...))`), counting a match that hits the
/// backtracking limit as no match.
pub fn count_matches(regex: &Regex, text: &str) -> usize {
    regex.find_iter(text).filter(|m| m.is_ok()).count()
}

/// `re.search(...) is not None`.
pub fn is_match(regex: &Regex, text: &str) -> bool {
    regex.is_match(text).unwrap_or(false)
}

/// `re.split(pattern, text)` for a pattern without groups.
pub fn split<'t>(regex: &Regex, text: &'t str) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut last = 0;
    for found in regex.find_iter(text).flatten() {
        pieces.push(&text[last..found.start()]);
        last = found.end();
    }
    pieces.push(&text[last..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_takes_pythons_whitespace_including_information_separators() {
        assert_eq!(strip("\x1c\u{3000} hi \t\x1f"), "hi");
        assert_eq!(
            strip("\u{200b}x"),
            "\u{200b}x",
            "zero-width space is not whitespace"
        );
    }

    #[test]
    fn case_predicates_follow_python() {
        assert!(is_upper("HELLO, WORLD 123"));
        assert!(!is_upper("123 !"), "no cased character");
        assert!(!is_upper("HELLo"));
        assert!(is_lower("hello ß"));
        assert!(!is_lower("ǅ"), "titlecase is neither");
        assert!(!is_upper("ǅ"));
    }

    #[test]
    fn word_class_excludes_combining_marks_like_python() {
        // "हिंदी": Python's \w+ splits at the vowel signs (ह, द); so must we.
        let re = compile(r"\w+", false, false).unwrap();
        assert_eq!(count_matches(&re, "हिंदी"), 2);
        assert_eq!(count_matches(&re, "don't stop_now 42"), 4);
    }

    #[test]
    fn boundaries_comments_and_classes_translate() {
        let re = compile(r"\bcat\b", true, false).unwrap();
        assert!(is_match(&re, "A CAT."));
        assert!(!is_match(&re, "concatenate"));
        let re = compile(r"(?i)\b(can)(?#X)(not)\b", false, false).unwrap();
        assert!(is_match(&re, "I CANNOT"));
        let re = compile(r"[\w-]+", false, false).unwrap();
        assert_eq!(count_matches(&re, "well-known fact"), 2);
        let re = compile(r"[]a]", false, false).unwrap();
        assert!(is_match(&re, "]"));
    }

    #[test]
    fn split_keeps_empty_ends_like_re_split() {
        let re = compile(r"\s?\*\*\*\s?", false, false).unwrap();
        assert_eq!(split(&re, "*** a *** b ***"), ["", "a", "b", ""]);
    }
}

/// Whether `c` is a Python `\w` character.
pub fn is_word_char(c: char) -> bool {
    static WORD_CHAR: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = WORD_CHAR.get_or_init(|| Regex::new(&format!("^[{WORD}]$")).expect("word class"));
    c == '_' || (c.is_alphanumeric() && re.is_match(c.encode_utf8(&mut [0; 4])).unwrap_or(false))
}

/// Python's `\b` at byte offset `i` of `text`.
pub fn is_boundary(text: &str, i: usize) -> bool {
    let before = text[..i].chars().next_back().is_some_and(is_word_char);
    let after = text[i..].chars().next().is_some_and(is_word_char);
    before != after
}

/// `re.search(r"\b" + word + r"\b", text, flags=re.IGNORECASE)`. A plain word is found with the
/// fast engine and its boundaries checked by hand; a word with regex syntax in it goes to the
/// backtracking engine with Python's `\b`.
pub struct WholeWord {
    literal: Option<Regex>,
    pattern: Option<Regex>,
}

impl WholeWord {
    pub fn new(word: &str) -> Result<WholeWord, String> {
        let is_literal = !word.chars().any(|c| r"\.^$*+?{}[]|()".contains(c));
        Ok(if is_literal {
            WholeWord {
                literal: Some(compile(word, true, false)?),
                pattern: None,
            }
        } else {
            WholeWord {
                literal: None,
                pattern: Some(compile(&format!(r"\b{word}\b"), true, false)?),
            }
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        if let Some(pattern) = &self.pattern {
            return is_match(pattern, text);
        }
        let literal = self.literal.as_ref().expect("one of the two is set");
        let mut pos = 0;
        while let Ok(Some(found)) = literal.find_from_pos(text, pos) {
            if is_boundary(text, found.start()) && is_boundary(text, found.end()) {
                return true;
            }
            // Python tries every start position: continue one character after this match's start.
            let step = text[found.start()..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
            pos = found.start() + step;
            if pos > text.len() {
                break;
            }
        }
        false
    }
}

#[cfg(test)]
mod whole_word_tests {
    use super::*;

    #[test]
    fn literal_fast_path_agrees_with_the_backtracking_pattern() {
        let texts = [
            "The cat sat.",
            "concatenate",
            "CAT_",
            "a cat's tail",
            "scat cat",
            "cats",
            "",
            "éCAT",
            "cat",
            "x-cat-y",
            "bobcat cat5 cat",
        ];
        for word in ["cat", "Cat", "cat-y", "a cat"] {
            let fast = WholeWord::new(word).unwrap();
            let slow = compile(&format!(r"\b{word}\b"), true, false).unwrap();
            for text in texts {
                assert_eq!(
                    fast.is_match(text),
                    is_match(&slow, text),
                    "{word:?} in {text:?}"
                );
            }
        }
    }
}
