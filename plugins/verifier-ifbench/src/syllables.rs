//! `syllapy.count` (syllapy 0.7.2, the version IFBench pins): its word list first, then its
//! vowel-group rule.

use std::collections::HashMap;
use std::sync::OnceLock;

use nltk_text::python;

use crate::text::PUNCTUATION;

/// syllapy's `data.csv` (MIT; see `data/syllapy/LICENSE`): `word,count` per line.
static DATA: &str = include_str!("../data/syllapy/data.csv");

fn known() -> &'static HashMap<&'static str, usize> {
    static KNOWN: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        DATA.lines()
            .filter_map(|line| {
                let (word, count) = line.split_once(',')?;
                Some((word, count.trim().parse().ok()?))
            })
            .collect()
    })
}

/// `syllapy.count(word)`.
pub fn count(word: &str) -> usize {
    let lowered = python::lower(python::strip(word));
    let word = python::strip_chars(&lowered, PUNCTUATION);
    if word.is_empty() || word.chars().any(python::is_decimal_char) {
        return 0;
    }
    if let Some(&n) = known().get(word) {
        return n;
    }
    // Compound words like self-care: `re.match("([^-]+)-(.+)", word)`.
    if let Some(dash) = word.find('-')
        && dash > 0
        && word.len() > dash + 1
    {
        let (first, second) = (count(&word[..dash]), count(&word[dash + 1..]));
        return if first == 0 || second == 0 {
            0
        } else {
            first + second
        };
    }
    vowel_groups(word)
}

/// `syllapy._syllables`.
fn vowel_groups(word: &str) -> usize {
    let is_vowel = |c: char| "aeiouy".contains(c);
    let chars: Vec<char> = word.chars().collect();
    let mut count: i64 = is_vowel(chars[0]) as i64;
    for pair in chars.windows(2) {
        if is_vowel(pair[1]) && !is_vowel(pair[0]) {
            count += 1;
        }
    }
    if word.ends_with('e') {
        count -= 1;
    }
    if word.ends_with("le") && chars.len() > 2 && !is_vowel(chars[chars.len() - 3]) {
        count += 1;
    }
    if count == 0 {
        count += 1;
    }
    count as usize
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn word_list_then_rule_as_syllapy() {
        assert_eq!(count("Table."), 2);
        assert_eq!(count("self-care"), count("self") + count("care"));
        assert_eq!(count("zzqxle"), 1); // rule: no vowel group, "le" after a consonant
        assert_eq!(count("r2d2"), 0);
        assert_eq!(count("--"), 0);
    }
}
