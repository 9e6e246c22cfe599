//! `repeat:*`: repeat the request with a changed first word, output one sentence, copy a span.

use nltk_text::python;

use super::Check;
use crate::args::Args;
use crate::catalogue;
use crate::text::split;

pub fn build(name: &str, args: &Args) -> Result<Check, String> {
    Ok(match name {
        "repeat_change" => {
            let prompt = args.non_empty("prompt_to_repeat")?.to_string();
            let tail = |text: &str| split(text)[1.min(split(text).len())..].join(" ");
            let expected = tail(&prompt);
            Box::new(move |v| v != prompt && tail(v) == expected)
        }
        "repeat_simple" => {
            let sentence = catalogue::entry("repeat:repeat_simple")
                .expect("in catalogue")
                .sentence;
            let expected = python::lower(python::strip(sentence));
            Box::new(move |v| python::lower(python::strip(v)) == expected)
        }
        "repeat_span" => {
            let prompt: Vec<char> = args.non_empty("prompt_to_repeat")?.chars().collect();
            let start = args.count("n_start", i64::MIN)?;
            let end = args.count("n_end", i64::MIN)?;
            let span: String = python_slice(&prompt, start, end.saturating_add(1))
                .iter()
                .collect();
            let expected = python::lower(python::strip(&span));
            Box::new(move |v| python::lower(python::strip(v)) == expected)
        }
        _ => unreachable!("catalogue id repeat:{name}"),
    })
}

/// `items[start:end]` with Python's negative indices and clamping.
fn python_slice<T>(items: &[T], start: i64, end: i64) -> &[T] {
    let len = items.len() as i64;
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) } as usize;
    let (start, end) = (clamp(start), clamp(end));
    if start < end { &items[start..end] } else { &[] }
}

#[cfg(test)]
mod tests {
    fn check(name: &str, args: &str, v: &str) -> bool {
        crate::checks::follows(&format!("repeat:{name}"), args, v)
    }

    #[test]
    fn spans_are_inclusive_character_ranges_with_python_slicing() {
        let args = r#"{"prompt_to_repeat": "Hello brave world", "n_start": 6, "n_end": 10}"#;
        assert!(check("repeat_span", args, " BRAVE "));
        let args = r#"{"prompt_to_repeat": "Hello brave world", "n_start": -5, "n_end": 100}"#;
        assert!(check("repeat_span", args, "world"));
    }

    #[test]
    fn the_first_word_must_change_but_the_rest_stay() {
        let args = r#"{"prompt_to_repeat": "Write a poem about cats"}"#;
        assert!(check("repeat_change", args, "Compose a poem about cats"));
        assert!(!check("repeat_change", args, "Write a poem about cats"));
        assert!(!check("repeat_change", args, "Compose a poem on cats"));
    }
}
