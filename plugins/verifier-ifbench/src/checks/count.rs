//! `count:*`: words, unique words, conjunctions, names, numbers, Japanese words, pronouns,
//! punctuation marks and keywords.

use std::collections::HashSet;

use nltk_text::{python, word_tokenize};

use super::Check;
use crate::args::Args;
use crate::text::{self, split, strip_punctuation, without_punctuation};

const PERSON_NAMES: [&str; 50] = [
    "Emma",
    "Liam",
    "Sophia",
    "Jackson",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Isabella",
    "Mason",
    "Mia",
    "Ethan",
    "Charlotte",
    "Alexander",
    "Amelia",
    "Benjamin",
    "Harper",
    "Leo",
    "Zoe",
    "Daniel",
    "Chloe",
    "Samuel",
    "Lily",
    "Matthew",
    "Grace",
    "Owen",
    "Abigail",
    "Gabriel",
    "Ella",
    "Jacob",
    "Scarlett",
    "Nathan",
    "Victoria",
    "Elijah",
    "Layla",
    "Nicholas",
    "Audrey",
    "David",
    "Hannah",
    "Christopher",
    "Penelope",
    "Thomas",
    "Nora",
    "Andrew",
    "Aria",
    "Joseph",
    "Claire",
    "Ryan",
    "Stella",
    "Jonathan",
];

const PRONOUNS: [&str; 64] = [
    "i",
    "me",
    "we",
    "us",
    "you",
    "he",
    "him",
    "she",
    "her",
    "it",
    "they",
    "them",
    "my",
    "mine",
    "our",
    "ours",
    "your",
    "yours",
    "his",
    "her",
    "hers",
    "its",
    "their",
    "theirs",
    "myself",
    "ourselves",
    "yourself",
    "yourselves",
    "himself",
    "herself",
    "itself",
    "themselves",
    "this",
    "that",
    "these",
    "those",
    "who",
    "whom",
    "whose",
    "which",
    "what",
    "whoever",
    "whomever",
    "whatever",
    "whichever",
    "anybody",
    "anyone",
    "anything",
    "everybody",
    "everyone",
    "everything",
    "nobody",
    "nothing",
    "somebody",
    "someone",
    "something",
    "each",
    "either",
    "neither",
    "both",
    "all",
    "some",
    "any",
    "none",
];

const CONJUNCTIONS: [&str; 7] = ["and", "but", "for", "nor", "or", "so", "yet"];

pub fn build(name: &str, args: &Args) -> Result<Check, String> {
    Ok(match name {
        "word_count_range" => {
            let min = args.count("min_words", 0)? as usize;
            let max = args.count("max_words", 0)? as usize;
            Box::new(move |v| (min..=max).contains(&text::count_words(v)))
        }
        "unique_word_count" => {
            let n = args.count("N", 0)? as usize;
            Box::new(move |v| {
                let lowered = python::lower(v);
                let unique: HashSet<&str> =
                    split(&lowered).into_iter().map(strip_punctuation).collect();
                unique.len() >= n
            })
        }
        "conjunctions" => {
            let n = args.count("small_n", 0)? as usize;
            // The set holds the words as written: "and" and "And," count as two.
            Box::new(move |v| {
                let found: HashSet<&str> = split(v)
                    .into_iter()
                    .filter(|w| {
                        CONJUNCTIONS.contains(&python::lower(strip_punctuation(w)).as_str())
                    })
                    .collect();
                found.len() >= n
            })
        }
        "person_names" => {
            let n = args.count("N", 0)? as usize;
            Box::new(move |v| {
                PERSON_NAMES
                    .iter()
                    .filter(|name| has_whole_word(v, name))
                    .count()
                    >= n
            })
        }
        "numbers" => {
            let n = args.count("N", 0)? as usize;
            Box::new(move |v| text::decimal_runs(&without_punctuation(v)).len() == n)
        }
        "words_japanese" => {
            let n = args.count("N", 1)? as usize;
            Box::new(move |v| {
                split(v).into_iter().enumerate().all(|(i, word)| {
                    let word = strip_punctuation(word);
                    (i + 1) % n != 0
                        || word.is_empty()
                        || python::is_digit(word)
                        || is_japanese(word)
                })
            })
        }
        "pronouns" => {
            let n = args.count("N", 0)? as usize;
            Box::new(move |v| {
                let lowered = python::lower(&v.replace('/', " "));
                word_tokenize::tokens(&lowered)
                    .filter(|t| PRONOUNS.contains(&t.as_str()))
                    .count()
                    >= n
            })
        }
        "punctuation" => Box::new(covers_punctuation),
        "keywords_multiple" => {
            let keywords: Vec<String> = (1..=5)
                .map(|i| {
                    args.string(&format!("keyword{i}"))
                        .map(|k| python::lower(python::strip(k)))
                })
                .collect::<Result<_, _>>()?;
            Box::new(move |v| {
                let lowered = python::lower(v);
                keywords
                    .iter()
                    .zip([1, 2, 3, 5, 7])
                    .all(|(keyword, times)| lowered.matches(keyword.as_str()).count() == times)
            })
        }
        _ => unreachable!("catalogue id count:{name}"),
    })
}

/// `re.search(r'\b' + re.escape(word) + r'\b', text)`, case-sensitive.
pub fn has_whole_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(start, found)| {
        python::is_boundary(text, start) && python::is_boundary(text, start + found.len())
    })
}

/// Hiragana, Katakana or CJK ideographs (`[\u3040-\u30ff\u4e00-\u9fff]`).
fn is_japanese(word: &str) -> bool {
    word.chars()
        .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// `PunctuationCoverChecker`: an interrobang (`?!`, `!?` or `‽`) and each of `.,!?;:` besides;
/// one `?!` (else one `!?`) is taken out before the marks are looked for.
fn covers_punctuation(v: &str) -> bool {
    if !(v.contains("!?") || v.contains("?!") || v.contains('‽')) {
        return false;
    }
    let rest = if v.contains("?!") {
        v.replacen("?!", "", 1)
    } else {
        v.replacen("!?", "", 1)
    };
    ['.', ',', '!', '?', ';', ':']
        .iter()
        .all(|mark| rest.contains(*mark))
}

#[cfg(test)]
mod tests {
    fn check(name: &str, args: &str, v: &str) -> bool {
        crate::checks::follows(&format!("count:{name}"), args, v)
    }

    #[test]
    fn conjunctions_are_counted_as_written() {
        assert!(check(
            "conjunctions",
            r#"{"small_n": 2}"#,
            "this and that And more"
        ));
        assert!(!check(
            "conjunctions",
            r#"{"small_n": 2}"#,
            "this and that and more"
        ));
    }

    #[test]
    fn the_interrobang_must_be_there_besides_the_marks() {
        assert!(!check("punctuation", "{}", "Hi, there. Ok; see: yes?!"));
        assert!(!check(
            "punctuation",
            "{}",
            "Hi, there! Ok; see: yes? Why?!"
        ));
        assert!(check(
            "punctuation",
            "{}",
            "Hi, there! Ok; see: yes? Why?! End."
        ));
    }

    #[test]
    fn names_need_word_boundaries_and_case() {
        assert!(check("person_names", r#"{"N": 2}"#, "Emma met Leo."));
        assert!(!check(
            "person_names",
            r#"{"N": 2}"#,
            "Emma met Leonard and emma."
        ));
    }

    #[test]
    fn numbers_are_digit_runs_after_punctuation_is_removed() {
        assert!(check("numbers", r#"{"N": 2}"#, "It costs 3.50 for 2"));
        assert!(check("numbers", r#"{"N": 1}"#, "1,000,000 people"));
    }

    #[test]
    fn keywords_are_counted_as_substrings() {
        let args = r#"{"keyword1": "a1", "keyword2": "b", "keyword3": "c", "keyword4": "d", "keyword5": "e"}"#;
        assert!(!check("keywords_multiple", args, "a1 b b c c c"));
    }
}
