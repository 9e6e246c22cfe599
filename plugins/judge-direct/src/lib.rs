//! Judge and refiner prompts for small models. SPaR's refiner answers with a reflection and the
//! refined output between `[[start]]`/`[[end]]`; a 135M model almost never writes that format
//! (113 of 120 refinements had no markers in our measurement), so every search failed. This
//! plugin asks for the corrected answer directly and takes the whole reply as the refinement
//! (the markers are still honoured when a model writes them). The judge prompt keeps SPaR's
//! `Final Judgement ... Yes|No` verdict, so the SDK's verdict parser applies.

use spar_plugin_sdk::judge::{JUDGEMENT_MARKER, Judge, parse_spar_refinement};
use spar_plugin_sdk::{Message, PluginInfo};

struct DirectJudge;

/// Labels a model may put before its answer despite being asked not to.
const ANSWER_LABELS: &[&str] = &["new answer:", "corrected answer:", "answer:"];

impl Judge for DirectJudge {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "judge-direct",
            env!("CARGO_PKG_VERSION"),
            "Direct judge and rewrite prompts for small models (whole reply = refinement)",
        )
    }

    fn judge_prompt(instruction: &str, response: &str) -> Vec<Message> {
        vec![Message::user(format!(
            "Request:\n{instruction}\n\nAnswer:\n{response}\n\n\
             Does the answer follow every instruction in the request? Name any instruction it \
             breaks, then end with one line:\n{JUDGEMENT_MARKER} Yes\nor\n{JUDGEMENT_MARKER} No"
        ))]
    }

    fn refine_prompt(instruction: &str, response: &str, critique: &str) -> Vec<Message> {
        // The verdict line of this plugin's own judgements says nothing the refiner can act on
        // (the host's account of failed verifier checks has none).
        let problems: Vec<&str> = critique
            .lines()
            .filter(|l| !l.trim_start().starts_with(JUDGEMENT_MARKER))
            .collect();
        vec![Message::user(format!(
            "{instruction}\n\nA first answer to this was:\n{response}\n\n{}\n\n\
             Write the answer again so that it follows every instruction above. Keep what was \
             right and fix only what is wrong. Reply with the new answer only.",
            problems.join("\n").trim()
        ))]
    }

    fn parse_refinement(text: &str) -> Option<String> {
        if let Some(marked) = parse_spar_refinement(text) {
            return Some(marked);
        }
        let mut answer = text.trim();
        for label in ANSWER_LABELS {
            // `get`, not indexing: the reply may start with a multi-byte character.
            if answer
                .get(..label.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(label))
            {
                answer = answer[label.len()..].trim_start();
                break;
            }
        }
        (!answer.is_empty()).then(|| answer.to_string())
    }
}

spar_plugin_sdk::export_judge!(DirectJudge);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refine_prompt_is_one_turn_with_the_problems_and_without_the_verdict() {
        let refine = DirectJudge::refine_prompt(
            "Write in lowercase.",
            "Hello World",
            &format!("Names the rule.\n- Not satisfied: all lowercase\n{JUDGEMENT_MARKER} No"),
        );
        assert_eq!(refine.len(), 1);
        let text = &refine[0].content;
        assert!(text.starts_with("Write in lowercase.") && text.contains("Hello World"));
        assert!(text.contains("- Not satisfied: all lowercase"));
        assert!(!text.contains(JUDGEMENT_MARKER), "{text}");
    }

    #[test]
    fn the_whole_reply_is_the_refinement_unless_marked() {
        assert_eq!(
            DirectJudge::parse_refinement("  hello world\n").as_deref(),
            Some("hello world")
        );
        assert_eq!(
            DirectJudge::parse_refinement("New answer: hello world").as_deref(),
            Some("hello world")
        );
        assert_eq!(
            DirectJudge::parse_refinement("Thoughts.\n[[start]]hi[[end]]").as_deref(),
            Some("hi")
        );
        assert_eq!(DirectJudge::parse_refinement("   \n"), None);
        // Found by llama.cpp's server: a reply starting with multi-byte characters.
        assert_eq!(
            DirectJudge::parse_refinement("🌱✨🌱 hello").as_deref(),
            Some("🌱✨🌱 hello")
        );
        assert_eq!(
            DirectJudge::parse_judgment(&format!("fine\n{JUDGEMENT_MARKER} Yes")),
            Some(true)
        );
    }
}
