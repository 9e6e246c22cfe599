//! SPaR's judge and refiner prompts (own wording, the paper's formats): the judge checks every
//! constraint step by step and ends with `Final Judgement (if the Output accurately follows the
//! Prompt): Yes|No`; the refinement is a follow-up turn after the critique that answers with a
//! reflection and `Final Refined Output: [[start]] ... [[end]]`. The parsers are the SDK's
//! defaults, which implement exactly those formats.

use spar_plugin_sdk::judge::{JUDGEMENT_MARKER, Judge, REFINED_END, REFINED_START};
use spar_plugin_sdk::{Message, PluginInfo};

struct SparJudge;

fn judge_request(instruction: &str, response: &str) -> String {
    format!(
        "You are checking whether an output follows its prompt exactly.\n\n\
         [Prompt]\n{instruction}\n[End of Prompt]\n\n\
         [Output]\n{response}\n[End of Output]\n\n\
         List every constraint the prompt sets (content, format, length, language, wording, \
         punctuation, case, start and end). Check them one by one against the output, quoting \
         the output where it matters, and name each constraint it does not satisfy. Then end \
         with exactly one line:\n\
         {JUDGEMENT_MARKER} Yes\nor\n{JUDGEMENT_MARKER} No"
    )
}

impl Judge for SparJudge {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "judge-spar",
            env!("CARGO_PKG_VERSION"),
            "SPaR judge and refinement prompts (Yes/No verdict, [[start]]/[[end]] refinements)",
        )
    }

    fn judge_prompt(instruction: &str, response: &str) -> Vec<Message> {
        vec![Message::user(judge_request(instruction, response))]
    }

    fn refine_prompt(instruction: &str, response: &str, critique: &str) -> Vec<Message> {
        vec![
            Message::user(judge_request(instruction, response)),
            Message::assistant(critique),
            Message::user(format!(
                "Now rewrite the output so that it satisfies every constraint of the prompt. \
                 Change only what your judgement found wrong and keep everything else as it is. \
                 First reflect briefly on what must change, then give the complete new output \
                 between the markers, like this:\n\
                 Final Refined Output: {REFINED_START} the refined output {REFINED_END}"
            )),
        ]
    }
}

spar_plugin_sdk::export_judge!(SparJudge);

#[cfg(test)]
mod tests {
    use super::*;

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
                .ends_with(&format!("{JUDGEMENT_MARKER} No"))
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
