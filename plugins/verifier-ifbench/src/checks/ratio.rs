//! `ratio:*`: stop words, sentence types, trigram overlap and equal-length sentences.

use std::collections::HashSet;
use std::sync::OnceLock;

use nltk_text::python;

use super::Check;
use crate::args::Args;
use crate::text::{self, sentences};

/// NLTK's English stop words (`nltk.corpus.stopwords.words('english')`; see `data/stopwords`).
static STOPWORDS: &str = include_str!("../../data/stopwords/english");

fn stopwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.lines().filter(|l| !l.is_empty()).collect())
}

pub fn build(name: &str, args: &Args) -> Result<Check, String> {
    Ok(match name {
        "stop_words" => {
            let percentage = args.number("percentage")?;
            Box::new(move |v| {
                let words = text::word_tokens(v);
                if words.is_empty() {
                    return false;
                }
                let stop = words
                    .iter()
                    .filter(|w| stopwords().contains(python::lower(w).as_str()))
                    .count();
                stop as f64 / words.len() as f64 * 100.0 <= percentage
            })
        }
        "sentence_type" => Box::new(|v| {
            let (declarative, interrogative, _) = endings(v);
            declarative == 2 * interrogative
        }),
        "sentence_balance" => Box::new(|v| {
            let (declarative, interrogative, exclamatory) = endings(v);
            declarative == interrogative && interrogative == exclamatory
        }),
        "overlap" => {
            let reference = trigrams(args.string("reference_text")?);
            let percentage = args.number("percentage")?;
            Box::new(move |v| {
                let own = trigrams(v);
                if own.is_empty() {
                    return false;
                }
                let overlap = own.intersection(&reference).count() as f64 / own.len() as f64;
                (percentage - 2.0..=percentage + 2.0).contains(&(overlap * 100.0))
            })
        }
        "sentence_words" => Box::new(|v| {
            let sentences = sentences(v);
            sentences.len() == 3 && {
                let length = |s: &str| python::strip(s).chars().count();
                sentences.iter().all(|s| length(s) == length(sentences[0]))
            }
        }),
        _ => unreachable!("catalogue id ratio:{name}"),
    })
}

/// Sentences ending in `.`, `?` and `!`.
fn endings(v: &str) -> (usize, usize, usize) {
    let sentences = sentences(v);
    let ending = |end: char| sentences.iter().filter(|s| s.ends_with(end)).count();
    (ending('.'), ending('?'), ending('!'))
}

/// `set(nltk.ngrams(text, 3))`: the character trigrams.
fn trigrams(text: &str) -> HashSet<[char; 3]> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

#[cfg(test)]
mod tests {
    fn check(name: &str, args: &str, v: &str) -> bool {
        crate::checks::follows(&format!("ratio:{name}"), args, v)
    }

    #[test]
    fn stop_words_are_a_share_of_word_tokens() {
        // "the", "of", "a" are 3 of 6 tokens: 50%.
        assert!(check(
            "stop_words",
            r#"{"percentage": 50.0}"#,
            "The end of a long road"
        ));
        assert!(!check(
            "stop_words",
            r#"{"percentage": 49.9}"#,
            "The end of a long road"
        ));
        assert!(!check("stop_words", r#"{"percentage": 100}"#, "..."));
    }

    #[test]
    fn overlap_is_within_two_points() {
        let args = r#"{"percentage": 50, "reference_text": "abcd"}"#;
        // Trigrams of "abcX": abc (shared), bcX: 50%.
        assert!(check("overlap", args, "abcX"));
        assert!(!check("overlap", args, "abXY"));
    }

    #[test]
    fn sentence_type_counts_endings() {
        assert!(check("sentence_type", "{}", "One. Two. Why?"));
        assert!(!check("sentence_type", "{}", "One. Why?"));
    }
}
