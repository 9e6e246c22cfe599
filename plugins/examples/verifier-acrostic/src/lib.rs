//! An example of a third-party verifier, written only against `spar-plugin-sdk`: a constraint
//! IFEval lacks, `acrostic:first_letters` ("the first letters of your lines spell WORD").

use serde_json::Value;
use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::verifier::{CheckResult, ConstraintInfo, Verifier, strict_and_loose};

const ACROSTIC: &str = "acrostic:first_letters";

struct Acrostic;

/// The `word` argument: letters only, at least two of them.
fn word_arg(args: &str) -> Result<String, String> {
    let args: Value =
        serde_json::from_str(args).map_err(|e| format!("arguments are not JSON: {e}"))?;
    let word = args
        .get("word")
        .and_then(Value::as_str)
        .ok_or("argument `word` (a string) is required")?;
    if word.chars().count() < 2 || !word.chars().all(char::is_alphabetic) {
        return Err(format!(
            "argument `word` must be two or more letters, got {word:?}"
        ));
    }
    Ok(word.to_uppercase())
}

/// Whether the non-blank lines of `response`, one per letter, start with the letters of `word`
/// (ignoring case and leading markdown such as `-`, `*`, `#` or numbering).
fn spells(response: &str, word: &str) -> bool {
    let initials: Vec<char> = response
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.chars()
                .find(|c| c.is_alphabetic())
                .map(|c| c.to_uppercase().next().unwrap_or(c))
                .unwrap_or(' ')
        })
        .collect();
    initials.iter().copied().eq(word.chars())
}

impl Verifier for Acrostic {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "verifier-acrostic",
            env!("CARGO_PKG_VERSION"),
            "Acrostic constraints: line initials spell a given word",
        )
    }

    fn constraints() -> Vec<ConstraintInfo> {
        vec![ConstraintInfo {
            id: ACROSTIC.to_string(),
            description: "The first letters of the response's non-blank lines spell a word."
                .to_string(),
            args_schema: r#"{"type":"object","properties":{"word":{"type":"string","minLength":2}},"required":["word"],"additionalProperties":false}"#.to_string(),
        }]
    }

    fn describe(id: &str, args: &str) -> Result<String, String> {
        match id {
            ACROSTIC => {
                let word = word_arg(args)?;
                Ok(format!(
                    "Write your answer as an acrostic: it must have exactly {} lines, and their first letters must spell \"{word}\".",
                    word.chars().count()
                ))
            }
            other => Err(format!("unknown constraint `{other}`")),
        }
    }

    fn check(id: &str, args: &str, _prompt: &str, response: &str) -> Result<CheckResult, String> {
        match id {
            ACROSTIC => {
                let word = word_arg(args)?;
                Ok(strict_and_loose(response, |r| spells(r, &word)))
            }
            other => Err(format!("unknown constraint `{other}`")),
        }
    }
}

spar_plugin_sdk::export_verifier!(Acrostic);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_lines_pass_and_others_fail() {
        let args = r#"{"word": "sea"}"#;
        let poem = "Salt on the wind\nEvery wave a letter\nAlways returning";
        let r = Acrostic::check(ACROSTIC, args, "", poem).unwrap();
        assert!(r.strict && r.loose);
        let r = Acrostic::check(ACROSTIC, args, "", "Salt\nAir\nEbb").unwrap();
        assert!(!r.strict && !r.loose);
        // An intro line breaks strict but not loose (IFEval's loose variants drop it).
        let r = Acrostic::check(ACROSTIC, args, "", &format!("Here you go:\n{poem}")).unwrap();
        assert!(!r.strict && r.loose);
        let r = Acrostic::check(ACROSTIC, args, "", "- **S**alt\n- **E**bb\n- **A**ir").unwrap();
        assert!(r.strict);
    }

    #[test]
    fn bad_arguments_and_ids_are_errors() {
        assert_eq!(
            Acrostic::check(ACROSTIC, "{}", "", "x").unwrap_err(),
            "argument `word` (a string) is required"
        );
        assert!(Acrostic::check(ACROSTIC, r#"{"word":"a1"}"#, "", "x").is_err());
        assert!(Acrostic::check(ACROSTIC, "not json", "", "x").is_err());
        assert_eq!(
            Acrostic::check("nope", "{}", "", "x").unwrap_err(),
            "unknown constraint `nope`"
        );
    }

    #[test]
    fn describe_states_the_word() {
        let text = Acrostic::describe(ACROSTIC, r#"{"word":"Rust"}"#).unwrap();
        assert!(text.contains("exactly 4 lines") && text.contains("\"RUST\""));
    }
}
