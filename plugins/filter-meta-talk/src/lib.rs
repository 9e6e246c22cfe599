//! Drops pairs whose chosen answer talks about a constraint instead of keeping it. A verifier
//! that looks for "P.P.S" passes "I added a postscript starting with P.P.S to the answer." (seen
//! in the demo); DPO would then teach the actor to narrate its edits. A sentence is meta-talk
//! when it reports an edit in the first person ("I added", "I made sure", "I have included")
//! about a part of the answer or the instruction ("postscript", "answer", "keyword", "title"),
//! when it says what "this answer" or "the response" now contains or follows, or when it is a
//! word count. A pair is dropped when its chosen answer has more such sentences than its rejected
//! answer. Config: none (`{}`).

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::filter::{Decision, Pair, PairFilter, parse_config};

struct MetaTalk;

const FIRST_PERSON_EDITS: &[&str] = &[
    "i added",
    "i have added",
    "i've added",
    "i included",
    "i have included",
    "i've included",
    "i made sure",
    "i have made sure",
    "i've made sure",
    "i ensured",
    "i have ensured",
    "i've ensured",
    "i used",
    "i have used",
    "i've used",
    "i removed",
    "i have removed",
    "i rewrote",
    "i have rewritten",
    "i've rewritten",
    "i revised",
    "i have revised",
    "i changed",
    "i have changed",
    "i corrected",
    "i have corrected",
    "i fixed",
    "i have fixed",
    "i kept",
    "i wrapped",
    "i highlighted",
    "i ended",
    "i replaced",
    "i formatted",
    "i put",
    "i wrote the",
    "i followed",
    "i have followed",
    "i've followed",
];

/// What a narrated edit is about: a part of the answer or of the instruction.
const ANSWER_PARTS: &[&str] = &[
    "answer",
    "response",
    "postscript",
    "p.s",
    "p.p.s",
    "constraint",
    "instruction",
    "requirement",
    "placeholder",
    "keyword",
    "highlight",
    "section",
    "paragraph",
    "title",
    "capital",
    "lowercase",
    "uppercase",
    "comma",
    "json",
    "bullet",
    "quotation",
    "word",
    "sentence",
    "format",
    "letter",
    "markdown",
    "asterisk",
];

const SELF_REFERENCES: &[&str] = &[
    "this answer",
    "this response",
    "the answer now",
    "the response now",
    "the revised answer",
    "the above answer",
    "the above response",
    "my answer",
    "my response",
    "the new answer",
];

const SELF_CLAIMS: &[&str] = &[
    "contains",
    "includes",
    "has ",
    "ends with",
    "uses",
    "follows",
    "meets",
    "satisfies",
    "is written",
    "is in ",
    "is now",
    "starts with",
    "does not use",
    "doesn't use",
];

const WORD_COUNTS: &[&str] = &["word count:", "(word count", "(words:", "total words:"];

/// Sentences, split after `.`, `!`, `?` and at line breaks.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            out.push(std::mem::take(&mut current));
            continue;
        }
        current.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            out.push(std::mem::take(&mut current));
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether `sentence` (lowercase) narrates the answer instead of being part of it.
pub fn is_meta_talk(sentence: &str) -> bool {
    let has = |list: &[&str]| list.iter().any(|p| contains_phrase(sentence, p));
    (has(FIRST_PERSON_EDITS) && has(ANSWER_PARTS))
        || (has(SELF_REFERENCES) && has(SELF_CLAIMS))
        || has(WORD_COUNTS)
}

/// `phrase` in `text`, starting at a word boundary (so "i used" does not match "ai used").
fn contains_phrase(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

/// The meta-talk sentences of `text`.
pub fn meta_sentences(text: &str) -> usize {
    sentences(text).iter().filter(|s| is_meta_talk(s)).count()
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

impl PairFilter for MetaTalk {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "filter-meta-talk",
            env!("CARGO_PKG_VERSION"),
            "Drops pairs whose chosen answer talks about a constraint instead of keeping it",
        )
    }

    fn filter(config: &str, pairs: Vec<Pair>) -> Result<Vec<Decision>, String> {
        // No settings: any key is an error.
        let NoSettings {} = parse_config(config)?;
        Ok(pairs
            .iter()
            .map(|p| {
                if meta_sentences(&p.chosen) > meta_sentences(&p.rejected) {
                    Decision::Drop("meta-talk".to_string())
                } else {
                    Decision::Keep
                }
            })
            .collect())
    }
}

spar_plugin_sdk::export_filter!(MetaTalk);

#[cfg(test)]
mod tests {
    use super::*;
    use spar_plugin_sdk::Message;

    fn pair(chosen: &str, rejected: &str) -> Pair {
        Pair {
            id: "p".into(),
            prompt: vec![Message::user(
                "Write a note to a friend. At the end of your response, please explicitly add a \
                 postscript starting with P.P.S",
            )],
            chosen: chosen.into(),
            rejected: rejected.into(),
            chosen_value: 1.0,
            rejected_value: 0.0,
        }
    }

    #[test]
    fn the_demo_answer_that_passes_by_naming_the_postscript_is_dropped() {
        // From the demo run (issue 13): the chosen answer passed the P.P.S check by talking
        // about it; its rejected answer had a real "P.P.S" coming, cut off after "P".
        let narrated = pair(
            "Your friend has a special relationship with you. I added a postscript starting with \
             P.P.S to the answer.",
            "Your friend has a special relationship with you. P",
        );
        let kept = pair(
            "Your friend has a special relationship with you.\n\nP.P.S. I kept the photos.",
            "Your friend has a special relationship with you.",
        );
        assert_eq!(
            MetaTalk::filter("", vec![narrated, kept]).unwrap(),
            vec![Decision::Drop("meta-talk".into()), Decision::Keep]
        );
    }

    #[test]
    fn narration_is_told_from_ordinary_first_person_text() {
        assert!(is_meta_talk(
            "i have included the keyword 'river' three times."
        ));
        assert!(is_meta_talk("this response contains no commas."));
        assert!(is_meta_talk("(word count: 312)"));
        assert!(!is_meta_talk("i added sugar to the cake and it rose."));
        assert!(!is_meta_talk("the answer is 42."));
        assert!(!is_meta_talk("kai used the answer key."));
        assert_eq!(
            meta_sentences("Hello there. I made sure every word is lowercase!"),
            1
        );
    }

    #[test]
    fn narration_the_rejected_answer_shares_is_not_what_the_pair_teaches() {
        let both = pair(
            "This response contains a list.\n* a\n* b",
            "This response contains a list. a, b",
        );
        assert_eq!(
            MetaTalk::filter("{}", vec![both]).unwrap(),
            vec![Decision::Keep]
        );
        assert!(
            MetaTalk::filter(r#"{"strict": true}"#, vec![])
                .unwrap_err()
                .contains("strict")
        );
    }
}
