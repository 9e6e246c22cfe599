//! The `judge` role: the refiner's judge and refinement prompts and their parsers.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "judge",
        with: {
            "spar:plugins/types@0.1.0": crate::base::spar::plugins::types,
            "spar:plugins/host@0.1.0": crate::base::spar::plugins::host,
        },
        pub_export_macro: true,
        export_macro_name: "__spar_export_judge",
        default_bindings_module: "spar_plugin_sdk::judge::bindings",
    });
}

use crate::{Message, PluginInfo};
use bindings::exports::spar::plugins::judge_api as api;

/// The marker a SPaR judgment ends with; the verdict follows it.
pub const JUDGEMENT_MARKER: &str = "Final Judgement (if the Output accurately follows the Prompt):";
/// What SPaR's parser looks for: the marker's first words, so a judgment that shortens the
/// marker still counts.
pub const JUDGEMENT_KEY: &str = "Final Judgement";
/// The markers around a refined response.
pub const REFINED_START: &str = "[[start]]";
/// See [`REFINED_START`].
pub const REFINED_END: &str = "[[end]]";

/// A judge plugin. The parsers default to SPaR's formats, so a judge that only rewords the
/// prompts implements `info`, `judge_prompt` and `refine_prompt`.
pub trait Judge: 'static {
    /// Who this plugin is.
    fn info() -> PluginInfo;

    /// The conversation asking whether `response` follows every constraint of `instruction`.
    fn judge_prompt(instruction: &str, response: &str) -> Vec<Message>;

    /// The verdict of one judgment. Default: SPaR's rule, the first of `Yes`/`No` after the
    /// first [`JUDGEMENT_KEY`] (and before a second one); no key or neither word gives `None`.
    fn parse_judgment(text: &str) -> Option<bool> {
        parse_spar_judgment(text)
    }

    /// The conversation asking for a refinement that fixes what `critique` found.
    fn refine_prompt(instruction: &str, response: &str, critique: &str) -> Vec<Message>;

    /// The refined response of one refinement. Default: SPaR's rule, the trimmed text after the
    /// first [`REFINED_START`], up to the next [`REFINED_END`] or [`REFINED_START`].
    fn parse_refinement(text: &str) -> Option<String> {
        parse_spar_refinement(text)
    }
}

/// The second piece of Python's `text.split(marker)`: after the first `marker`, up to the next.
fn first_piece<'t>(text: &'t str, marker: &str) -> Option<&'t str> {
    let (_, after) = text.split_once(marker)?;
    Some(after.split_once(marker).map_or(after, |(piece, _)| piece))
}

/// SPaR's verdict rule (see [`Judge::parse_judgment`]): the authors' `get_acc`
/// (`src/process_data.py`), `text.split('Final Judgement')[1]` searched for `Yes` and `No`.
pub fn parse_spar_judgment(text: &str) -> Option<bool> {
    let after = first_piece(text, JUDGEMENT_KEY)?;
    let yes = after.find("Yes");
    let no = after.find("No");
    match (yes, no) {
        (Some(y), Some(n)) => Some(y < n),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => None,
    }
}

/// SPaR's refinement rule (see [`Judge::parse_refinement`]): the authors'
/// `unwrap_refine_cot` (`src/models/get_response.py`),
/// `text.split('[[start]]')[1].split('[[end]]')[0].strip()`; an empty result is no refinement
/// (the authors' code retries it).
pub fn parse_spar_refinement(text: &str) -> Option<String> {
    let after = first_piece(text, REFINED_START)?;
    let inside = after
        .split_once(REFINED_END)
        .map_or(after, |(inside, _)| inside);
    let inside = inside.trim();
    (!inside.is_empty()).then(|| inside.to_string())
}

#[doc(hidden)]
pub struct Adapter<T>(std::marker::PhantomData<T>);

impl<T: Judge> api::Guest for Adapter<T> {
    fn info() -> PluginInfo {
        crate::__enter();
        T::info()
    }
    fn judge_prompt(instruction: String, response: String) -> Vec<Message> {
        crate::__enter();
        T::judge_prompt(&instruction, &response)
    }
    fn parse_judgment(text: String) -> Option<bool> {
        crate::__enter();
        T::parse_judgment(&text)
    }
    fn refine_prompt(instruction: String, response: String, critique: String) -> Vec<Message> {
        crate::__enter();
        T::refine_prompt(&instruction, &response, &critique)
    }
    fn parse_refinement(text: String) -> Option<String> {
        crate::__enter();
        T::parse_refinement(&text)
    }
}

/// Export a [`Judge`] implementation as this component's judge.
#[macro_export]
macro_rules! export_judge {
    ($ty:ty) => {
        // Only wasm builds export: the export names contain `:` and `/`, which native linkers
        // reject, and native builds exist only to run a plugin's unit tests.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __SparJudge = $crate::judge::Adapter<$ty>;
            $crate::judge::bindings::__spar_export_judge!(__SparJudge with_types_in $crate::judge::bindings);
        };
        // Native builds (for the plugin's unit tests) still type-check the implementation.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::judge::Judge>::judge_prompt;
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgment_takes_first_word_after_the_first_key() {
        let t = format!("Yes I checked.\n{JUDGEMENT_MARKER} No, because Yes was wrong");
        assert_eq!(parse_spar_judgment(&t), Some(false));
        // SPaR's parser: the first "Final Judgement", full marker or not.
        assert_eq!(parse_spar_judgment("Final Judgement: Yes"), Some(true));
        let twice = format!("{JUDGEMENT_MARKER} No\n{JUDGEMENT_MARKER} Yes");
        assert_eq!(parse_spar_judgment(&twice), Some(false));
        assert_eq!(
            parse_spar_judgment(&format!("{JUDGEMENT_MARKER} Yes")),
            Some(true)
        );
        assert_eq!(parse_spar_judgment("Yes"), None);
        // Python's split()[1]: the words after a second key do not count.
        assert_eq!(
            parse_spar_judgment("Final Judgement: unclear. Final Judgement: Yes"),
            None
        );
        // The authors' examples of their format: `Final Judgement (...): (Yes or No)` style
        // answers and a verdict that names both words.
        assert_eq!(
            parse_spar_judgment(&format!(
                "Step-by-step verification: fine.\n{JUDGEMENT_MARKER} Yes"
            )),
            Some(true)
        );
        assert_eq!(
            parse_spar_judgment(&format!("{JUDGEMENT_MARKER} No. It is not a Yes.")),
            Some(false)
        );
        assert_eq!(
            parse_spar_judgment(&format!("{JUDGEMENT_MARKER} maybe")),
            None
        );
    }

    #[test]
    fn refinement_between_markers() {
        let t = "Reflection...\nFinal Refined Output: [[start]]\n  Hello.\n[[end]] trailing";
        assert_eq!(parse_spar_refinement(t).as_deref(), Some("Hello."));
        // SPaR's parser: the first [[start]], [[end]] optional.
        assert_eq!(
            parse_spar_refinement("[[start]] no end").as_deref(),
            Some("no end")
        );
        assert_eq!(
            parse_spar_refinement("[[start]] one [[end]] [[start]] two [[end]]").as_deref(),
            Some("one")
        );
        assert_eq!(parse_spar_refinement("[[start]]  [[end]]"), None);
        // Python's split()[1] stops at a second [[start]] even without an [[end]].
        assert_eq!(
            parse_spar_refinement("[[start]] one [[start]] two [[end]]").as_deref(),
            Some("one")
        );
        assert_eq!(parse_spar_refinement("no markers"), None);
    }
}
