//! SPaR's judge and refiner prompts, word for word as the authors' code sends them
//! (thu-coai/SPaR, Apache-2.0: `judge_template` in `src/tasks/prompts.py`, `build_refine_message`
//! in `src/tasks/science.py`), so that `configs/paper-llama3-8b.toml` runs the paper's prompts.
//! The judge checks step by step and ends with `Final Judgement (if the Output accurately follows
//! the Prompt): Yes|No`; the refinement is a follow-up turn after the critique that answers with a
//! reflection and `Final Refined Output: [[start]] ... [[end]]`. The parsers are the SDK's
//! defaults, which read those formats as the authors' code does. The authors' typos ("weather",
//! "it can ... follows") are kept: a refiner fine-tuned on these prompts saw them.

use spar_plugin_sdk::judge::{JUDGEMENT_MARKER, Judge};
use spar_plugin_sdk::{Message, PluginInfo};

struct SparJudge;

/// `judge_template` of the authors' `src/tasks/prompts.py`, `{}` filled in order.
fn judge_request(instruction: &str, response: &str) -> String {
    format!(
        "Please act an expert in evaluating the capabilities of instruction-following. In the \
         instruction-following task, the Output needs to honestly/precisely/closely follow the \
         given Prompt.\nYour task is to carefully judge whether the Output to \
         honestly/precisely/closely follows the given Prompt. If there are any constraints in \
         the Prompt that are not satisfied by the Output, please list all the constraints that \
         are not satisfied.\n\nPrompt: \u{201c}{instruction}\u{201d}\n\nOutput: \u{201c}{response}\u{201d}\n\n\
         Please carefully judge if each constraint is perfectly satisfied and give a final \
         judgement weather the Output accurately follows the Prompt in the following format:\n\
         Step-by-step verification: xxx\n\
         Final Judgement (if the Output accurately follows the Prompt): (Yes or No)"
    )
}

/// The third turn of the authors' `build_refine_message` (`src/tasks/science.py`).
const REFINE_REQUEST: &str = "Based on your judgement, refine the Output to make sure it can \
    honestly/precisely/closely follows the given Prompt.\n\n\n\
    Please carefully refine the Output to meet all the constraints in the Prompt. \n\n\
    Please format like this:\n\
    Reflection on how to refine the Output: xxx\n\
    Final Refined Output: [[start]] xxx [[end]]";

impl Judge for SparJudge {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "judge-spar",
            env!("CARGO_PKG_VERSION"),
            "SPaR's own judge and refinement prompts (Yes/No verdict, [[start]]/[[end]] refinements)",
        )
    }

    fn judge_prompt(instruction: &str, response: &str) -> Vec<Message> {
        vec![Message::user(judge_request(instruction, response))]
    }

    fn refine_prompt(instruction: &str, response: &str, critique: &str) -> Vec<Message> {
        // The critique stands as the refiner's own judgement, so it ends in this format's
        // verdict. The refiner's critiques already do; the host's account of failed verifier
        // checks is plain text (it knows no plugin's format), and refinement is only asked for
        // answers that failed, so the verdict it gets is No.
        let critique = if critique.contains(JUDGEMENT_MARKER) {
            critique.to_string()
        } else {
            format!("{}\n{JUDGEMENT_MARKER} No", critique.trim_end())
        };
        vec![
            Message::user(judge_request(instruction, response)),
            Message::assistant(critique),
            Message::user(REFINE_REQUEST),
        ]
    }
}

spar_plugin_sdk::export_judge!(SparJudge);

#[cfg(test)]
mod tests {
    use super::*;
    use spar_plugin_sdk::judge::{REFINED_END, REFINED_START};

    #[test]
    fn prompts_carry_the_instruction_the_response_and_the_formats() {
        let judge = SparJudge::judge_prompt("Say hi in French.", "Bonjour");
        assert_eq!(judge.len(), 1);
        assert!(
            judge[0].content.contains("Say hi in French.") && judge[0].content.contains("Bonjour")
        );
        assert!(
            judge[0]
                .content
                .ends_with(&format!("{JUDGEMENT_MARKER} (Yes or No)"))
        );
        let refine =
            SparJudge::refine_prompt("Say hi in French.", "Hello", "It is English. ... No");
        assert_eq!(
            refine.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(),
            ["user", "assistant", "user"]
        );
        assert!(
            refine[2].content.contains(REFINED_START) && refine[2].content.contains(REFINED_END)
        );
    }

    /// The authors' strings, pasted from `src/tasks/prompts.py` and `src/tasks/science.py`.
    #[test]
    fn prompts_are_the_authors_word_for_word() {
        let template = "Please act an expert in evaluating the capabilities of instruction-following. In the instruction-following task, the Output needs to honestly/precisely/closely follow the given Prompt.
Your task is to carefully judge whether the Output to honestly/precisely/closely follows the given Prompt. If there are any constraints in the Prompt that are not satisfied by the Output, please list all the constraints that are not satisfied.

Prompt: \u{201c}P\u{201d}

Output: \u{201c}O\u{201d}

Please carefully judge if each constraint is perfectly satisfied and give a final judgement weather the Output accurately follows the Prompt in the following format:
Step-by-step verification: xxx
Final Judgement (if the Output accurately follows the Prompt): (Yes or No)";
        assert_eq!(SparJudge::judge_prompt("P", "O")[0].content, template);
        let refine = "Based on your judgement, refine the Output to make sure it can honestly/precisely/closely follows the given Prompt.


Please carefully refine the Output to meet all the constraints in the Prompt. 

Please format like this:
Reflection on how to refine the Output: xxx
Final Refined Output: [[start]] xxx [[end]]";
        let critique = format!("C\n{JUDGEMENT_MARKER} No");
        let messages = SparJudge::refine_prompt("P", "O", &critique);
        assert_eq!(messages[0].content, template);
        assert_eq!(messages[1].content, critique);
        assert_eq!(messages[2].content, refine);
    }

    /// The host's account of failed verifier checks has no verdict line; the critique turn gets
    /// this format's No, as the refiner's own judgement of a failed answer would end.
    #[test]
    fn a_plain_critique_gets_the_verdict_line() {
        let messages = SparJudge::refine_prompt(
            "P",
            "O",
            "The output does not follow the prompt:\n- Not satisfied (x): y\n",
        );
        assert_eq!(
            messages[1].content,
            format!(
                "The output does not follow the prompt:\n- Not satisfied (x): y\n{JUDGEMENT_MARKER} No"
            )
        );
        assert_eq!(SparJudge::parse_judgment(&messages[1].content), Some(false));
    }

    #[test]
    fn parsers_follow_the_spar_formats() {
        assert_eq!(
            SparJudge::parse_judgment(&format!("ok\n{JUDGEMENT_MARKER} Yes")),
            Some(true)
        );
        assert_eq!(SparJudge::parse_judgment("I think it is fine."), None);
        assert_eq!(
            SparJudge::parse_refinement(
                "Reflection: fix case.\nFinal Refined Output: [[start]]bonjour[[end]]"
            )
            .as_deref(),
            Some("bonjour")
        );
        assert_eq!(
            SparJudge::parse_refinement("Final Refined Output: bonjour"),
            None
        );
    }
}
