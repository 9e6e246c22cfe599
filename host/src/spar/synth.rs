//! Training prompts with verifiable constraints: a plain task plus one to three constraints drawn
//! from the verifier plugins' catalogue, each phrased by the plugin's own `describe`, written in
//! IFEval's input format (`key`, `prompt`, `instruction_id_list`, `kwargs`).

use serde_json::{Value, json};

use crate::engine::sampling::Rng;
use crate::plugins::verifiers::VerifierSessions;

/// Arguments for the IFEval instruction ids this generator knows how to parametrise, drawn in the
/// ranges of the official generator. Ids outside this table are used only when they take no
/// arguments.
fn sample_args(id: &str, task: &str, rng: &mut Rng) -> Option<Value> {
    let mut pick = |n: u64| (rng.next_u64() % n) as i64;
    let words = [
        "river", "window", "garden", "signal", "marble", "harvest", "lantern", "compass",
    ];
    let relation = |r: i64| if r == 0 { "less than" } else { "at least" };
    Some(match id {
        "punctuation:no_comma"
        | "change_case:english_lowercase"
        | "change_case:english_capital"
        | "detectable_format:title"
        | "startend:quotation"
        | "detectable_format:json_format"
        | "detectable_format:constrained_response"
        | "combination:two_responses" => json!({}),
        "length_constraints:number_words" => {
            let r = pick(2);
            json!({"num_words": if r == 0 { 50 + 25 * pick(6) } else { 40 + 20 * pick(5) }, "relation": relation(r)})
        }
        "length_constraints:number_sentences" => {
            json!({"num_sentences": 2 + pick(6), "relation": relation(pick(2))})
        }
        "length_constraints:number_paragraphs" => json!({"num_paragraphs": 2 + pick(3)}),
        "keywords:existence" => {
            let a = words[pick(words.len() as u64) as usize];
            let b = words[pick(words.len() as u64) as usize];
            if a == b {
                json!({"keywords": [a]})
            } else {
                json!({"keywords": [a, b]})
            }
        }
        "keywords:frequency" => {
            let keyword = words[pick(words.len() as u64) as usize];
            json!({"keyword": keyword, "frequency": 1 + pick(3), "relation": "at least"})
        }
        "keywords:forbidden_words" => {
            let word = words[pick(words.len() as u64) as usize];
            json!({"forbidden_words": [word, "very"]})
        }
        "keywords:letter_frequency" => {
            let letter = ["a", "e", "o", "t", "z", "q"][pick(6) as usize];
            json!({"letter": letter, "let_frequency": 2 + pick(8), "let_relation": relation(pick(2))})
        }
        "detectable_content:number_placeholders" => json!({"num_placeholders": 1 + pick(3)}),
        "detectable_content:postscript" => {
            json!({"postscript_marker": if pick(2) == 0 { "P.S." } else { "P.P.S" }})
        }
        "detectable_format:number_bullet_lists" => json!({"num_bullets": 2 + pick(4)}),
        "detectable_format:number_highlighted_sections" => json!({"num_highlights": 1 + pick(3)}),
        "startend:end_checker" => {
            let phrase = [
                "Any other questions?",
                "Is there anything else I can help with?",
            ][pick(2) as usize];
            json!({"end_phrase": phrase})
        }
        "change_case:capital_word_frequency" => {
            json!({"capital_frequency": 1 + pick(5), "capital_relation": relation(pick(2))})
        }
        "combination:repeat_prompt" => json!({"prompt_to_repeat": task}),
        _ => return None,
    })
}

/// Pairs of ids that contradict each other.
fn conflict(a: &str, b: &str) -> bool {
    let pair = |x: &str, y: &str| (a == x && b == y) || (a == y && b == x);
    let exclusive = [
        "detectable_format:json_format",
        "detectable_format:constrained_response",
        "combination:two_responses",
        "combination:repeat_prompt",
    ];
    a.split(':').next() == b.split(':').next() && a.starts_with("change_case")
        || pair(
            "change_case:english_lowercase",
            "change_case:english_capital",
        )
        || exclusive.contains(&a)
        || exclusive.contains(&b)
}

/// `n` prompts from `tasks` with 1–3 constraints each. The same seed gives the same prompts.
pub fn synthesize(
    tasks: &[String],
    catalogue: &[String],
    sessions: &mut VerifierSessions<'_>,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<Value>> {
    anyhow::ensure!(!tasks.is_empty(), "no tasks to build prompts from");
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    let mut attempts = 0;
    while out.len() < n {
        attempts += 1;
        anyhow::ensure!(
            attempts < n * 100 + 100,
            "the catalogue offers no usable constraints"
        );
        let task = &tasks[(rng.next_u64() % tasks.len() as u64) as usize];
        let want = 1 + (rng.next_u64() % 3) as usize;
        let mut ids: Vec<String> = Vec::new();
        let mut kwargs: Vec<Value> = Vec::new();
        let mut sentences = Vec::new();
        for _ in 0..want * 4 {
            if ids.len() == want {
                break;
            }
            let id = &catalogue[(rng.next_u64() % catalogue.len() as u64) as usize];
            if ids.iter().any(|other| other == id || conflict(other, id)) {
                continue;
            }
            let Some(args) = sample_args(id, task, &mut rng) else {
                continue;
            };
            let Ok(sentence) = sessions.describe(id, &args.to_string()) else {
                continue;
            };
            ids.push(id.clone());
            kwargs.push(args);
            sentences.push(sentence);
        }
        if ids.is_empty() {
            continue;
        }
        out.push(json!({
            "key": out.len(),
            "prompt": format!("{task} {}", sentences.join(" ")),
            "instruction_id_list": ids,
            "kwargs": kwargs,
        }));
    }
    Ok(out)
}
