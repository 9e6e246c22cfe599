//! Minimal edits that make a response keep one IFEval instruction, for the constraints that have
//! a mechanical fix: change the case, drop the commas or the forbidden words, wrap the answer in
//! quotes or in JSON, add a `<<title>>`, highlight sections, repeat the request first, append the
//! P.S. or the end phrase. Everything else in the response stays as it was, so the pair
//! (repaired, original) differs only where the instruction asked. Constraints without such a fix
//! ("at least 300 words", "in French", "exactly 3 bullet points") get `None`, and so does a
//! response that already keeps the constraint. A repair is returned only if the checker then
//! passes it (strictly).

use serde_json::Value;

use crate::instructions::Instruction;
use nltk_text::python;

/// What closes an appended postscript: the constraint asks for the marker, the sentence only
/// makes it read as one.
const POSTSCRIPT_TEXT: &str = "I hope this helps.";

/// `response` edited to keep instruction `id` with JSON `args`, or `None` (see the module doc).
pub fn repair(
    id: &str,
    args: &str,
    prompt: &str,
    response: &str,
) -> Result<Option<String>, String> {
    let instruction = Instruction::new(id, args)?;
    if instruction.follows(response) {
        return Ok(None);
    }
    let args: Value = serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
        .map_err(|e| format!("arguments are not valid JSON: {e}"))?;
    let text = python::strip(response);
    let repaired = match &instruction {
        Instruction::EnglishLowercase => Some(response.to_lowercase()),
        Instruction::EnglishCapital => Some(response.to_uppercase()),
        Instruction::NoComma => Some(without_commas(response)),
        Instruction::Quotation => Some(format!("\"{text}\"")),
        Instruction::JsonFormat => Some(
            serde_json::to_string_pretty(&serde_json::json!({ "answer": text }))
                .map_err(|e| e.to_string())?,
        ),
        Instruction::Title => {
            title_from(text, prompt).map(|title| format!("<<{title}>>\n\n{text}"))
        }
        Instruction::RepeatPrompt(request) => Some(format!("{}\n\n{text}", python::strip(request))),
        Instruction::EndChecker(phrase) => Some(format!("{text}\n\n{phrase}")),
        Instruction::Postscript(_) => args
            .get("postscript_marker")
            .and_then(Value::as_str)
            .map(|marker| format!("{text}\n\n{} {POSTSCRIPT_TEXT}", python::strip(marker))),
        Instruction::ForbiddenWords(_) => {
            let words: Vec<String> = args
                .get("forbidden_words")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            Some(without_words(response, &words))
        }
        Instruction::HighlightedSections(n) => highlight_lines(response, *n),
        _ => None,
    };
    Ok(repaired.filter(|r| r != response && instruction.follows(r)))
}

/// Commas removed; a comma followed by a space becomes that space.
fn without_commas(text: &str) -> String {
    text.replace(", ", " ").replace(',', "")
}

/// Every whitespace-separated word whose letters equal one of `words` (case ignored) removed,
/// with its following space.
fn without_words(text: &str, words: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        let space_end = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        let (space, next) = after.split_at(space_end);
        let core: String = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if words.contains(&core) {
            // Keep punctuation that ended the sentence.
            let tail: String = word
                .chars()
                .rev()
                .take_while(|c| matches!(c, '.' | '!' | '?'))
                .collect();
            if !tail.is_empty() {
                let trimmed = out.trim_end().len();
                out.truncate(trimmed);
                out.push_str(&tail);
                out.push_str(space);
            }
        } else {
            out.push_str(word);
            out.push_str(space);
        }
        rest = next;
    }
    out
}

/// A title from the response's first line (its first words, without markdown), else the
/// prompt's.
fn title_from(text: &str, prompt: &str) -> Option<String> {
    let words = |s: &str| -> Vec<String> {
        s.lines()
            .find(|l| l.chars().any(char::is_alphanumeric))
            .unwrap_or("")
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
            .filter(|w| !w.is_empty())
            .take(6)
            .collect()
    };
    let mut title = words(text);
    if title.is_empty() {
        title = words(prompt);
    }
    (!title.is_empty()).then(|| title.join(" "))
}

/// The first `n` lines that hold text and no `*` wrapped in `*…*` (markdown italics, which
/// IFEval counts as highlighted sections).
fn highlight_lines(text: &str, n: i64) -> Option<String> {
    let mut left = n;
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let body = line.trim();
            if left > 0 && !body.is_empty() && !body.contains('*') {
                left -= 1;
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}*{body}*")
            } else {
                line.to_string()
            }
        })
        .collect();
    (left == 0).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(id: &str, args: &str, text: &str) -> bool {
        crate::check(id, args, text).unwrap().strict
    }

    /// Repair `text` for `id`; the repair passes `id` and keeps `other` (an unrelated
    /// constraint the text kept).
    fn repaired(id: &str, args: &str, text: &str, other: (&str, &str)) -> String {
        assert!(!passes(id, args, text), "{id}: the example must fail first");
        assert!(
            passes(other.0, other.1, text),
            "{}: must pass first",
            other.0
        );
        let fixed = repair(id, args, "Write a note.", text)
            .unwrap()
            .unwrap_or_else(|| panic!("{id}: no repair"));
        assert!(passes(id, args, &fixed), "{id}: {fixed:?}");
        assert!(
            passes(other.0, other.1, &fixed),
            "{id} broke {}: {fixed:?}",
            other.0
        );
        fixed
    }

    const TEXT: &str = "Dear Sam, the river is high today.\nWe will walk, not swim.";
    const WORDS: (&str, &str) = (
        "length_constraints:number_words",
        r#"{"num_words": 5, "relation": "at least"}"#,
    );

    #[test]
    fn each_mechanical_fix_keeps_its_constraint_and_leaves_the_rest() {
        assert_eq!(
            repaired("change_case:english_lowercase", "{}", TEXT, WORDS),
            TEXT.to_lowercase()
        );
        assert_eq!(
            repaired("change_case:english_capital", "{}", TEXT, WORDS),
            TEXT.to_uppercase()
        );
        assert_eq!(
            repaired("punctuation:no_comma", "{}", TEXT, WORDS),
            "Dear Sam the river is high today.\nWe will walk not swim."
        );
        assert_eq!(
            repaired("startend:quotation", "{}", TEXT, WORDS),
            format!("\"{TEXT}\"")
        );
        let json = repaired("detectable_format:json_format", "{}", TEXT, WORDS);
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap()["answer"],
            TEXT
        );
        assert_eq!(
            repaired("detectable_format:title", "{}", TEXT, WORDS),
            format!("<<Dear Sam the river is high>>\n\n{TEXT}")
        );
        assert_eq!(
            repaired(
                "combination:repeat_prompt",
                r#"{"prompt_to_repeat": "Write a note to Sam."}"#,
                TEXT,
                WORDS
            ),
            format!("Write a note to Sam.\n\n{TEXT}")
        );
        assert_eq!(
            repaired(
                "startend:end_checker",
                r#"{"end_phrase": "Any other questions?"}"#,
                TEXT,
                WORDS
            ),
            format!("{TEXT}\n\nAny other questions?")
        );
        for marker in ["P.S.", "P.P.S"] {
            assert_eq!(
                repaired(
                    "detectable_content:postscript",
                    &format!(r#"{{"postscript_marker": "{marker}"}}"#),
                    TEXT,
                    WORDS
                ),
                format!("{TEXT}\n\n{marker} {POSTSCRIPT_TEXT}")
            );
        }
        assert_eq!(
            repaired(
                "keywords:forbidden_words",
                r#"{"forbidden_words": ["river", "swim"]}"#,
                TEXT,
                WORDS
            ),
            "Dear Sam, the is high today.\nWe will walk, not."
        );
        assert_eq!(
            repaired(
                "detectable_format:number_highlighted_sections",
                r#"{"num_highlights": 2}"#,
                TEXT,
                WORDS
            ),
            "*Dear Sam, the river is high today.*\n*We will walk, not swim.*"
        );
    }

    #[test]
    fn no_fix_for_what_has_none_and_nothing_to_fix_when_kept() {
        let long = r#"{"num_words": 300, "relation": "at least"}"#;
        assert_eq!(
            repair("length_constraints:number_words", long, "", TEXT),
            Ok(None)
        );
        assert_eq!(
            repair(
                "language:response_language",
                r#"{"language": "fr"}"#,
                "",
                TEXT
            ),
            Ok(None)
        );
        assert_eq!(
            repair("punctuation:no_comma", "{}", "", "No commas here."),
            Ok(None)
        );
        assert!(repair("no:such_id", "{}", "", TEXT).is_err());
        // Too few lines to highlight: no repair rather than a partial one.
        assert_eq!(
            repair(
                "detectable_format:number_highlighted_sections",
                r#"{"num_highlights": 3}"#,
                "",
                TEXT
            ),
            Ok(None)
        );
    }
}
