//! `sentence:*`: alliteration that grows, a keyword in the n-th sentence, word counts that grow.

use nltk_text::python;

use super::Check;
use crate::args::Args;
use crate::text::{PUNCTUATION_AND_SPACE, first_char, sentences, split, without_punctuation};

pub fn build(name: &str, args: &Args) -> Result<Check, String> {
    Ok(match name {
        "alliteration_increment" => Box::new(alliteration_grows),
        "keyword" => {
            let word = args.non_empty("word")?;
            // IFBench's `sentences[int(N - 1)]`: the 0-th sentence would be the last one.
            let n = args.count("N", 1)? as usize;
            let pattern = format!(r"\b{}\b", fancy_regex::escape(word));
            let regex = python::compile(&pattern, true, false)?;
            Box::new(move |v| {
                sentences(v)
                    .get(n - 1)
                    .is_some_and(|s| python::is_match(&regex, s))
            })
        }
        "increment" => {
            let step = args.count("small_n", 0)? as usize;
            Box::new(move |v| {
                let counts: Vec<usize> = sentences(v)
                    .iter()
                    .map(|s| split(python::strip(&without_punctuation(s))).len())
                    .collect();
                // IFBench indexes `sentences[0]`: no sentence at all is a crash there, not a pass.
                !counts.is_empty() && counts.windows(2).all(|p| p[1] == p[0] + step)
            })
        }
        _ => unreachable!("catalogue id sentence:{name}"),
    })
}

/// `IncrementingAlliterationChecker`: each sentence's alliteration score (2 for a pair of words
/// with the same first character, 1 more for each further word of the run) beats the last one's.
fn alliteration_grows(v: &str) -> bool {
    let mut previous: i64 = -1;
    for sentence in sentences(v) {
        let lowered = python::lower(sentence);
        let words: Vec<&str> = split(&lowered)
            .into_iter()
            .map(|w| python::lstrip_chars(w, PUNCTUATION_AND_SPACE))
            .filter(|w| !w.is_empty())
            .collect();
        let mut score = 0;
        let mut in_run = false;
        for pair in words.windows(2) {
            if first_char(pair[0]) == first_char(pair[1]) {
                score += if in_run { 1 } else { 2 };
                in_run = true;
            } else {
                in_run = false;
            }
        }
        if score <= previous {
            return false;
        }
        previous = score;
    }
    true
}

#[cfg(test)]
mod tests {
    fn check(name: &str, args: &str, v: &str) -> bool {
        crate::checks::follows(&format!("sentence:{name}"), args, v)
    }

    #[test]
    fn alliteration_must_grow_from_sentence_to_sentence() {
        assert!(check(
            "alliteration_increment",
            "{}",
            "Big bears. Silly snakes slither."
        ));
        assert!(!check(
            "alliteration_increment",
            "{}",
            "Big bears. Red dogs."
        ));
    }

    #[test]
    fn keyword_is_a_whole_word_in_the_nth_sentence_any_case() {
        let args = r#"{"word": "Moon", "N": 2.0}"#;
        assert!(check("keyword", args, "Hello. The moon is up."));
        assert!(!check("keyword", args, "Hello. The moonlight is up. Moon."));
    }

    #[test]
    fn each_sentence_adds_exactly_small_n_words() {
        let args = r#"{"small_n": 1}"#;
        assert!(check(
            "increment",
            args,
            "I ran. I ran far. I ran very far."
        ));
        assert!(!check("increment", args, "I ran. I ran very far."));
    }
}
