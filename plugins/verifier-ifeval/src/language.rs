//! Language identification for `language:response_language` and the `change_case:english_*`
//! checks, with the official checker's detector (see [`crate::langdetect`]).

/// The ISO 639-1 code (langdetect's spelling, e.g. `zh-cn`) of the text's language, `unknown` when
/// no language is probable enough, or `None` when the text has nothing to detect from (langdetect
/// raises then, and the checker counts the instruction as followed).
pub fn detect(text: &str) -> Option<&'static str> {
    crate::langdetect::detect(text)
}
