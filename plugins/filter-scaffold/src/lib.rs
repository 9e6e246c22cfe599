//! Drops pairs whose chosen answer carries the refine prompt's scaffolding: a small refiner,
//! asked to rewrite "A first answer to this was: …", often starts its reply with "A first answer
//! to this question is:" or a label such as "Corrected answer:", and the verifier still passes
//! it. DPO would then teach the actor to open answers with that frame. A pair is dropped when
//! the chosen answer contains a scaffold phrase (case and spacing ignored) that neither the
//! prompt nor the rejected answer contains.
//!
//! Config: `{"phrases": ["..."]}` adds phrases to the built-in list (SPaR's and judge-direct's
//! refine prompts, the labels small models put before a rewrite, and the critique's wording,
//! which a small refiner copies into its "answer").

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::filter::{Decision, Pair, PairFilter, parse_config};

struct Scaffold;

/// Pieces of the refine prompts (plugins judge-spar and judge-direct) and of the frames small
/// models wrap a rewrite in.
const PHRASES: &[&str] = &[
    "first answer to this",
    "second answer to this",
    "a first answer",
    "write the answer again",
    "reply with the new answer",
    "keep what was right",
    "fix only what is wrong",
    "follows every instruction above",
    "rewrite the output so that",
    "final refined output",
    "refined output:",
    "[[start]]",
    "[[end]]",
    "final judgement",
    "new answer:",
    "corrected answer:",
    "revised answer:",
    "refined answer:",
    "improved answer:",
    "rewritten answer:",
    "corrected response:",
    "revised response:",
    "refined response:",
    // The judge's critique leaking into the rewrite (host-written verifier critiques and the
    // judge prompts' wording).
    "the output does not follow the prompt",
    "does not follow every instruction",
    "does not follow the requested format",
    "follow every instruction in the request",
];

/// Lowercase with every run of whitespace made one space.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Phrases to add to the built-in ones.
    phrases: Vec<String>,
}

fn phrases(config: &str) -> Result<Vec<String>, String> {
    let Config { phrases: extra } = parse_config(config)?;
    let mut all: Vec<String> = PHRASES.iter().map(|p| p.to_string()).collect();
    for p in extra {
        if p.trim().is_empty() {
            return Err("`phrases` must hold non-empty strings".into());
        }
        all.push(normalise(&p));
    }
    Ok(all)
}

/// The first scaffold phrase in `chosen` that `prompt` and `rejected` lack.
pub fn leaked_phrase<'p>(
    phrases: &'p [String],
    prompt: &str,
    chosen: &str,
    rejected: &str,
) -> Option<&'p str> {
    let (prompt, chosen, rejected) = (normalise(prompt), normalise(chosen), normalise(rejected));
    phrases
        .iter()
        .find(|p| {
            chosen.contains(p.as_str())
                && !prompt.contains(p.as_str())
                && !rejected.contains(p.as_str())
        })
        .map(String::as_str)
}

impl PairFilter for Scaffold {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "filter-scaffold",
            env!("CARGO_PKG_VERSION"),
            "Drops pairs whose chosen answer carries the refine prompt's scaffolding",
        )
    }

    fn filter(config: &str, pairs: Vec<Pair>) -> Result<Vec<Decision>, String> {
        let phrases = phrases(config)?;
        Ok(pairs
            .iter()
            .map(|p| {
                let prompt: String = p
                    .prompt
                    .iter()
                    .map(|m| m.content.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                match leaked_phrase(&phrases, &prompt, &p.chosen, &p.rejected) {
                    Some(_) => Decision::Drop("scaffold".to_string()),
                    None => Decision::Keep,
                }
            })
            .collect())
    }
}

spar_plugin_sdk::export_filter!(Scaffold);

#[cfg(test)]
mod tests {
    use super::*;
    use spar_plugin_sdk::Message;

    fn pair(prompt: &str, chosen: &str, rejected: &str) -> Pair {
        Pair {
            id: "p".into(),
            prompt: vec![Message::user(prompt)],
            chosen: chosen.into(),
            rejected: rejected.into(),
            chosen_value: 1.0,
            rejected_value: 0.0,
        }
    }

    const PROMPT: &str = "Write a note to a friend. At the end of your response, please \
                          explicitly add a postscript starting with P.P.S";

    #[test]
    fn the_demo_pair_whose_chosen_answer_leaks_the_refine_prompt_is_dropped() {
        // From the demo run (issue 13): the refiner's reply began with the refine prompt's frame.
        let leaked = pair(
            PROMPT,
            "A first answer to this question is:\nDear friend, I hope you are well. I added a \
             postscript starting with P.P.S to the answer.",
            "Dear friend, I hope you are well and that we meet soon. P",
        );
        let clean = pair(
            PROMPT,
            "Dear friend, I hope you are well and that we meet soon.\n\nP.P.S. Bring the map.",
            "Dear friend, I hope you are well and that we meet soon. P",
        );
        assert_eq!(
            Scaffold::filter("", vec![leaked, clean]).unwrap(),
            vec![Decision::Drop("scaffold".into()), Decision::Keep]
        );
    }

    #[test]
    fn the_fidelity_runs_critique_echoes_are_dropped() {
        // From the fidelity benchmark's SPaR pairs: "answers" made of the critique's words
        // passed "capital words less than 1" and "no forbidden words".
        let echoed = pair(
            "Explain why recycling matters for a small town.",
            "First, no answer to this prompt.\n\nThe output does not follow the prompt.",
            "A small town can thrive without sustainable practices.",
        );
        let refusal = pair(
            "Give advice on how to apologize sincerely.",
            "This message does not follow every instruction. The correct answer is:",
            "1. Wish someone more.",
        );
        assert_eq!(
            Scaffold::filter("", vec![echoed, refusal]).unwrap(),
            vec![
                Decision::Drop("scaffold".into()),
                Decision::Drop("scaffold".into())
            ]
        );
    }

    #[test]
    fn labels_count_unless_the_prompt_or_the_rejected_answer_has_them_too() {
        let label = pair(
            "Fix my essay.",
            "Corrected  ANSWER: The essay is fine.",
            "The essay.",
        );
        let asked = pair(
            "Start with 'Corrected answer:' and fix my essay.",
            "Corrected answer: The essay is fine.",
            "The essay.",
        );
        assert_eq!(
            Scaffold::filter("{}", vec![label, asked]).unwrap(),
            vec![Decision::Drop("scaffold".into()), Decision::Keep]
        );
    }

    #[test]
    fn extra_phrases_come_from_the_config_and_bad_configs_are_named() {
        let custom = pair("Say hi.", "Here is my second try: hi", "hello");
        assert_eq!(
            Scaffold::filter(r#"{"phrases": ["Here is my second try"]}"#, vec![custom]).unwrap(),
            vec![Decision::Drop("scaffold".into())]
        );
        assert!(
            Scaffold::filter(r#"{"phrases": "x"}"#, vec![])
                .unwrap_err()
                .contains("phrases")
        );
        assert!(Scaffold::filter(r#"{"phrases": [""]}"#, vec![]).is_err());
        assert!(Scaffold::filter("not json", vec![]).is_err());
    }
}
