//! `nltk.word_tokenize`: Punkt sentences, then NLTK's improved Treebank word tokenizer on each.
//! The official checker counts all-capital words (`change_case:capital_word_frequency`) over
//! these tokens, so where it splits (`DON'T` is `DO` + `N'T`) decides the count.

use std::sync::OnceLock;

use fancy_regex::Regex;

use crate::{punkt, python};

/// The tokenizer's substitutions, in order: (Python pattern, replacement in fancy-regex syntax).
/// Transcribed from `nltk.tokenize.destructive.NLTKWordTokenizer`, with `$` written as `\z`:
/// Punkt sentences never end in a newline, where the two would differ, and `\z` keeps those
/// patterns on the fast (non-backtracking) engine.
const STARTING_QUOTES: &[(&str, &str)] = &[
    ("([«“‘„]|[`]+)", " ${1} "),
    (r#"^\""#, "``"),
    (r"(``)", " ${1} "),
    (r#"([ \(\[{<])(\"|\'{2})"#, "${1} `` "),
    (
        r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)",
        "${1} ",
    ),
];

const PUNCTUATION: &[(&str, &str)] = &[
    (r#"([^\.])(\.)([\]\)}>"\'»”’ ]*)\s*\z"#, "${1} ${2} ${3} "),
    (r"([:,])([^\d])", " ${1} ${2}"),
    (r"([:,])\z", " ${1} "),
    (r"\.{2,}", " ${0} "),
    (r"[;@#$%&]", " ${0} "),
    (r"[\u2012-\u2015]", " ${0} "),
    (r#"([^\.])(\.)([\]\)}>"\']*)\s*\z"#, "${1} ${2}${3} "),
    (r"[?!]", " ${0} "),
    (r"([^'])' ", "${1} ' "),
    (r"[*]", " ${0} "),
    // Parentheses and brackets, then double dashes.
    (r"[\]\[\(\)\{\}\<\>]", " ${0} "),
    (r"--", " -- "),
];

const ENDING_QUOTES: &[(&str, &str)] = &[
    ("([»”’])", " ${1} "),
    (r"''", " '' "),
    (r#"""#, " '' "),
    (r"\s+", " "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "${1} ${2} "),
];

/// Each contraction pattern applies only where its letters occur (checked first, cheaply: the
/// patterns themselves need the slower backtracking engine for `\b`).
const CONTRACTION_LITERALS: &[&str] = &[
    "cannot", "d'ye", "gimme", "gonna", "gotta", "lemme", "more'n", "wanna", "'tis", "'twas",
];

const CONTRACTIONS: &[&str] = &[
    r"(?i)\b(can)(?#X)(not)\b",
    r"(?i)\b(d)(?#X)('ye)\b",
    r"(?i)\b(gim)(?#X)(me)\b",
    r"(?i)\b(gon)(?#X)(na)\b",
    r"(?i)\b(got)(?#X)(ta)\b",
    r"(?i)\b(lem)(?#X)(me)\b",
    r"(?i)\b(more)(?#X)('n)\b",
    r"(?i)\b(wan)(?#X)(na)(?=\s)",
    r"(?i) ('t)(?#X)(is)\b",
    r"(?i) ('t)(?#X)(was)\b",
];

struct Rules {
    before_padding: Vec<(Regex, &'static str)>,
    ending_quotes: Vec<(Regex, &'static str)>,
    contractions: Vec<Regex>,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let compile = |(pattern, replacement): &(&str, &'static str)| {
            let regex = python::compile(pattern, false, false)
                .unwrap_or_else(|e| panic!("built-in tokenizer pattern: {e}"));
            (regex, *replacement)
        };
        Rules {
            before_padding: STARTING_QUOTES
                .iter()
                .chain(PUNCTUATION)
                .map(compile)
                .collect(),
            ending_quotes: ENDING_QUOTES.iter().map(compile).collect(),
            contractions: CONTRACTIONS.iter().map(|p| compile(&(*p, "")).0).collect(),
        }
    })
}

fn substitute(text: String, regex: &Regex, replacement: &str) -> String {
    match regex.try_replacen(&text, 0, replacement) {
        Ok(replaced) => replaced.into_owned(),
        // The backtracking limit: leave the text as it is rather than fail the whole check.
        Err(_) => text,
    }
}

/// `NLTKWordTokenizer().tokenize(sentence)`.
pub fn tokenize_sentence(sentence: &str) -> Vec<String> {
    let rules = rules();
    let mut text = sentence.to_string();
    for (regex, replacement) in &rules.before_padding {
        // The one backtracking rule of this group (the `'` lookarounds) needs a `'`.
        if regex.as_str().contains("(?<!") && !text.contains('\'') {
            continue;
        }
        text = substitute(text, regex, replacement);
    }
    text = format!(" {text} ");
    for (regex, replacement) in &rules.ending_quotes {
        text = substitute(text, regex, replacement);
    }
    let lowered = python::lower(&text);
    for (regex, literal) in rules.contractions.iter().zip(CONTRACTION_LITERALS) {
        if lowered.contains(literal) {
            text = substitute(text, regex, " ${1} ${2} ");
        }
    }
    python::split_whitespace(&text)
        .map(str::to_string)
        .collect()
}

/// `nltk.word_tokenize(text)`.
pub fn word_tokenize(text: &str) -> Vec<String> {
    tokens(text).collect()
}

/// The tokens of `nltk.word_tokenize(text)`, one sentence at a time: a checker that only counts
/// or looks at a few of them never holds all of a long response's tokens at once.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    punkt::sentences(text)
        .into_iter()
        .flat_map(tokenize_sentence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nltk_docstring_example() {
        let s = "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.";
        assert_eq!(
            tokenize_sentence(s),
            [
                "Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")", "in",
                "New", "York.", "Please", "buy", "me", "two", "of", "them.", "Thanks", "."
            ]
        );
    }

    #[test]
    fn contractions_and_quotes_split_words() {
        assert_eq!(
            tokenize_sentence("\"I DON'T know,\" he said; I CANNOT."),
            [
                "``", "I", "DO", "N'T", "know", ",", "''", "he", "said", ";", "I", "CAN", "NOT",
                "."
            ]
        );
        assert_eq!(
            tokenize_sentence("It’s JOHN’S"),
            ["It", "’", "s", "JOHN", "’", "S"]
        );
    }

    #[test]
    fn word_tokenize_splits_sentences_first() {
        assert_eq!(
            word_tokenize("HELLO THERE. I AM FINE!"),
            ["HELLO", "THERE", ".", "I", "AM", "FINE", "!"]
        );
    }
}
