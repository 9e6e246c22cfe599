//! The text primitives IFBench's checkers share (`instructions_util`), in Python's semantics.

use nltk_text::{punkt, python};

pub use nltk_text::python::PUNCTUATION;

/// `string.punctuation + ' '`, the set most checkers strip from words.
pub const PUNCTUATION_AND_SPACE: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ";

/// `instructions_util.split_into_sentences`: `nltk.sent_tokenize`.
pub fn sentences(text: &str) -> Vec<&str> {
    punkt::sentences(text)
}

/// The maximal runs of characters for which `keep` holds (`re.findall(r'X+', text)` for a class X).
pub fn runs(text: &str, keep: impl Fn(char) -> bool) -> Vec<&str> {
    let mut found = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (keep(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                found.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        found.push(&text[s..]);
    }
    found
}

/// The `\w+` tokens of `nltk.tokenize.RegexpTokenizer(r"\w+")`.
pub fn word_tokens(text: &str) -> Vec<&str> {
    runs(text, python::is_word_char)
}

/// `re.findall(r'\d+', text)`.
pub fn decimal_runs(text: &str) -> Vec<&str> {
    runs(text, python::is_decimal_char)
}

/// `instructions_util.count_words` (counted, not collected: a response may be megabytes).
pub fn count_words(text: &str) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for c in text.chars() {
        let word = python::is_word_char(c);
        count += (word && !in_word) as usize;
        in_word = word;
    }
    count
}

/// `text.translate(str.maketrans('', '', string.punctuation))`.
pub fn without_punctuation(text: &str) -> String {
    python::remove_chars(text, PUNCTUATION)
}

/// `word.strip(string.punctuation + ' ')`.
pub fn strip_punctuation(word: &str) -> &str {
    python::strip_chars(word, PUNCTUATION_AND_SPACE)
}

/// `str.split()`, collected.
pub fn split(text: &str) -> Vec<&str> {
    python::split_whitespace(text).collect()
}

/// The first character, if any (Python's `s[0]` on a non-empty string).
pub fn first_char(s: &str) -> Option<char> {
    s.chars().next()
}

/// `unicodedata.normalize('NFKD', text).encode('ASCII', 'ignore').decode('ASCII')`.
pub fn ascii_folded(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfkd().filter(char::is_ascii).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_tokens_are_python_word_runs() {
        assert_eq!(
            word_tokens("It's 3.5 km—naïve_x!"),
            ["It", "s", "3", "5", "km", "naïve_x"]
        );
        assert_eq!(count_words(""), 0);
    }

    #[test]
    fn ascii_folding_drops_marks_and_other_scripts() {
        assert_eq!(
            ascii_folded("São Tomé, Reykjavík ½ 東京"),
            "Sao Tome, Reykjavik 12 "
        );
    }
}
