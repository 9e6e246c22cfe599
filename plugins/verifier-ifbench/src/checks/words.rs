//! `words:*`: letters, vowels, consonants, palindromes, word lengths, repeats, syllables and
//! word positions.

use std::collections::{HashMap, HashSet};

use nltk_text::{python, word_tokenize};

use super::Check;
use crate::args::Args;
use crate::syllables;
use crate::text::{
    PUNCTUATION, PUNCTUATION_AND_SPACE, first_char, sentences, split, strip_punctuation,
    without_punctuation,
};

pub fn build(name: &str, args: &Args) -> Result<Check, String> {
    Ok(match name {
        "alphabet" => Box::new(alphabet_loop),
        "vowel" => Box::new(|v| {
            let paragraphs: Vec<&str> = python::strip(v).split('\n').collect();
            paragraphs.len() == 1 && {
                let vowels: HashSet<char> = python::lower(paragraphs[0])
                    .chars()
                    .filter(|c| "aeiou".contains(*c))
                    .collect();
                vowels.len() <= 3
            }
        }),
        "consonants" => Box::new(|v| {
            let is_consonant = |c: char| "bcdfghjklmnpqrstvwxyz".contains(c);
            let lowered = python::lower(v);
            split(python::strip(&lowered)).into_iter().all(|word| {
                let chars: Vec<char> = word.chars().collect();
                chars
                    .windows(2)
                    .any(|p| is_consonant(p[0]) && is_consonant(p[1]))
            })
        }),
        "palindrome" => Box::new(|v| {
            let lowered = python::lower(&without_punctuation(v));
            let palindromes = split(&lowered)
                .into_iter()
                .filter(|w| w.chars().count() >= 5 && w.chars().eq(w.chars().rev()))
                .count();
            palindromes >= 10
        }),
        "prime_lengths" => Box::new(|v| {
            const PRIMES: [usize; 25] = [
                2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79,
                83, 89, 97,
            ];
            let stripped = without_punctuation(v);
            split(&stripped)
                .into_iter()
                .all(|w| PRIMES.contains(&w.chars().count()))
        }),
        "repeats" => {
            let most = args.count("small_n", 0)? as usize;
            Box::new(move |v| {
                let words = without_punctuation(&python::lower(v));
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for word in python::split_whitespace(&words) {
                    *counts.entry(word).or_default() += 1;
                }
                counts.values().all(|&n| n <= most)
            })
        }
        "odd_even_syllables" => Box::new(|v| {
            let words = python::lower(&without_punctuation(v));
            let parities: Vec<usize> = split(&words)
                .into_iter()
                .map(|w| syllables::count(w) % 2)
                .collect();
            parities.windows(2).all(|p| p[0] != p[1])
        }),
        "last_first" => Box::new(|v| {
            sentences(v).windows(2).all(|pair| {
                let last = split(python::rstrip_chars(pair[0], PUNCTUATION_AND_SPACE))
                    .pop()
                    .map(python::lower);
                let first = split(python::lstrip_chars(pair[1], PUNCTUATION_AND_SPACE))
                    .first()
                    .map(|w| python::lower(w));
                matches!((last, first), (Some(a), Some(b)) if a == b)
            })
        }),
        "paragraph_last_first" => Box::new(|v| {
            v.split('\n').all(|paragraph| {
                let lowered = python::lower(python::strip(paragraph));
                let words = split(strip_punctuation(&lowered));
                words.first() == words.last()
            })
        }),
        "no_consecutive" => Box::new(|v| {
            let words = without_punctuation(&python::lower(v));
            split(&words)
                .windows(2)
                .all(|p| first_char(p[0]) != first_char(p[1]))
        }),
        "keywords_specific_position" => {
            let keyword = python::lower(python::strip(args.non_empty("keyword")?));
            // IFBench draws a random position for a missing or zero one.
            let n = args.count("n", 1)? as usize;
            let m = args.count("m", 1)? as usize;
            Box::new(move |v| {
                let sentences = sentences(v);
                let Some(sentence) = sentences.get(n - 1) else {
                    return false;
                };
                let words: Vec<String> = word_tokenize::tokens(sentence)
                    .filter(|t| t.chars().any(is_alnum))
                    .collect();
                words
                    .get(m - 1)
                    .is_some_and(|w| python::lower(w) == keyword)
            })
        }
        "words_position" => {
            let keyword = python::lower(python::strip(args.string("keyword")?));
            Box::new(move |v| {
                // The second token and the last three, streamed (a response may be megabytes).
                let (mut n, mut second, mut tail) = (0, None, std::collections::VecDeque::new());
                for token in word_tokenize::tokens(v) {
                    n += 1;
                    if n == 2 {
                        second = Some(token.clone());
                    }
                    tail.push_back(token);
                    if tail.len() > 3 {
                        tail.pop_front();
                    }
                }
                let Some(second) = second else {
                    return false;
                };
                let from_end = |k: usize| &tail[tail.len() - k];
                // `words[-1] in string.punctuation` is a substring test.
                let last = if PUNCTUATION.contains(from_end(1).as_str()) {
                    if n < 3 {
                        return false;
                    }
                    from_end(3)
                } else {
                    from_end(2)
                };
                python::lower(&second) == keyword && python::lower(last) == keyword
            })
        }
        _ => unreachable!("catalogue id words:{name}"),
    })
}

/// `str.isalnum()` for one character.
fn is_alnum(c: char) -> bool {
    python::is_alpha_char(c) || python::is_digit_char(c) || c.is_numeric()
}

/// `AlphabetLoopChecker`: each word starts with the letter after the previous word's.
fn alphabet_loop(v: &str) -> bool {
    let stripped = without_punctuation(v);
    let words = split(python::strip_chars(&stripped, PUNCTUATION_AND_SPACE));
    let Some(first) = words.first().and_then(|w| first_char(w)) else {
        return false;
    };
    // `words[0][0].lower()` must be one ASCII letter ("numbers are fails").
    let lowered = python::lower(first.encode_utf8(&mut [0; 4]));
    let mut letter = match lowered.as_bytes() {
        [b @ b'a'..=b'z'] => *b,
        _ => return false,
    };
    for word in &words[1..] {
        let word = python::lower(strip_punctuation(word));
        let Some(start) = first_char(&word) else {
            continue;
        };
        letter = b'a' + (letter - b'a' + 1) % 26;
        if start != letter as char {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    fn check(name: &str, args: &str, v: &str) -> bool {
        crate::checks::follows(&format!("words:{name}"), args, v)
    }

    #[test]
    fn the_alphabet_loops_after_z() {
        assert!(check("alphabet", "{}", "Yes, zebras always bite."));
        assert!(!check("alphabet", "{}", "Yes zebras bite."));
        assert!(!check("alphabet", "{}", "9 apples"));
    }

    #[test]
    fn paragraphs_end_with_their_first_word() {
        assert!(check(
            "paragraph_last_first",
            "{}",
            "Time flies, time.\n\nGo now go!"
        ));
        assert!(!check("paragraph_last_first", "{}", "Time flies.\nGo go"));
    }

    #[test]
    fn last_word_of_a_sentence_starts_the_next() {
        assert!(check("last_first", "{}", "I like tea. Tea is warm."));
        assert!(!check("last_first", "{}", "I like tea. Coffee is warm."));
    }

    #[test]
    fn words_position_skips_a_final_punctuation_token() {
        let args = r#"{"keyword": "sun"}"#;
        assert!(check(
            "words_position",
            args,
            "The sun rose over the sun today."
        ));
        assert!(check("words_position", args, "A sun and a sun here"));
        assert!(!check("words_position", args, "A sun and a moon here."));
    }

    #[test]
    fn keyword_position_counts_word_tokens_of_the_nth_sentence() {
        let args = r#"{"keyword": "blue", "n": 2, "m": 3}"#;
        assert!(check(
            "keywords_specific_position",
            args,
            "Hi. The sky, blue today."
        ));
        assert!(!check(
            "keywords_specific_position",
            args,
            "Hi. The blue sky."
        ));
    }

    #[test]
    fn syllables_alternate_in_parity() {
        assert!(check("odd_even_syllables", "{}", "cat table dog"));
        assert!(!check("odd_even_syllables", "{}", "cat dog"));
    }
}
