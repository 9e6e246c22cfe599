//! Drops pairs whose chosen answer restates the instruction instead of following it. With a
//! verifier as the judge, a weak refiner can pass by copying the constraint's own wording (an
//! instruction to use "placeholders such as [address]" already contains one); DPO would then
//! learn to echo prompts. A pair is dropped when the chosen answer shares a run of at least
//! `max_shared_words` consecutive words (default 8, case-insensitive) with the prompt and shares
//! a longer run than the rejected answer does.

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::filter::{Decision, Pair, PairFilter, parse_config};

struct Echo;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    max_shared_words: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_shared_words: 8,
        }
    }
}

fn max_shared_words(config: &str) -> Result<usize, String> {
    let Config { max_shared_words } = parse_config(config)?;
    if max_shared_words == 0 {
        return Err("`max_shared_words` must be a positive integer, got 0".into());
    }
    Ok(max_shared_words)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '[' && c != ']')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The longest run of consecutive words `a` and `b` share (dynamic programming over suffixes).
pub fn longest_shared_run(a: &[String], b: &[String]) -> usize {
    let mut best = 0;
    let mut previous = vec![0usize; b.len() + 1];
    for x in a {
        let mut current = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                current[j + 1] = previous[j] + 1;
                best = best.max(current[j + 1]);
            }
        }
        previous = current;
    }
    best
}

impl PairFilter for Echo {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "filter-echo",
            env!("CARGO_PKG_VERSION"),
            "Drops pairs whose chosen answer copies a long run of the prompt's words",
        )
    }

    fn filter(config: &str, pairs: Vec<Pair>) -> Result<Vec<Decision>, String> {
        let limit = max_shared_words(config)?;
        Ok(pairs
            .iter()
            .map(|p| {
                let prompt: Vec<String> = p.prompt.iter().flat_map(|m| words(&m.content)).collect();
                let chosen = longest_shared_run(&words(&p.chosen), &prompt);
                let rejected = longest_shared_run(&words(&p.rejected), &prompt);
                if chosen >= limit && chosen > rejected {
                    Decision::Drop("echo".to_string())
                } else {
                    Decision::Keep
                }
            })
            .collect())
    }
}

spar_plugin_sdk::export_filter!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use spar_plugin_sdk::Message;

    fn pair(chosen: &str, rejected: &str) -> Pair {
        Pair {
            id: "p".into(),
            prompt: vec![Message::user(
                "Give arguments for and against homework. The response must contain at least 2 \
                 placeholders represented by square brackets, such as [address].",
            )],
            chosen: chosen.into(),
            rejected: rejected.into(),
            chosen_value: 1.0,
            rejected_value: 0.0,
        }
    }

    #[test]
    fn a_chosen_answer_that_restates_the_instruction_is_dropped() {
        // From the demo run: the refiner "passed" by repeating the constraint.
        let echo = pair(
            "A second answer to this query must contain at least 2 placeholders represented by \
             square brackets, such as [address], and must contain a response",
            "Please provide the [address] where you would like to send the homework.",
        );
        let honest = pair(
            "For: homework at [school] builds habits. Against: it crowds out [sport].",
            "Homework builds habits but takes time.",
        );
        assert_eq!(
            Echo::filter("", vec![echo, honest]).unwrap(),
            vec![Decision::Drop("echo".into()), Decision::Keep]
        );
    }

    #[test]
    fn the_limit_is_configurable_and_checked() {
        let short_echo = pair("must contain at least 2 placeholders", "nothing");
        assert_eq!(
            Echo::filter(r#"{"max_shared_words": 4}"#, vec![short_echo]).unwrap(),
            vec![Decision::Drop("echo".into())]
        );
        assert!(Echo::filter(r#"{"max_shared_words": 0}"#, vec![]).is_err());
        assert_eq!(
            longest_shared_run(&words("a b c d"), &words("x b c d y")),
            3
        );
    }
}
