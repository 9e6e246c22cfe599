//! `format:*`: nesting, options, one word per line, emoji, indentation, quotes, lists, italics,
//! bullets, title case, a template and no whitespace.

use nltk_text::{python, word_tokenize};

use super::Check;
use crate::args::Args;
use crate::emoji::is_emoji;
use crate::text::{PUNCTUATION, sentences, split, strip_punctuation, without_punctuation};

pub fn build(name: &str, args: &Args) -> Result<Check, String> {
    Ok(match name {
        "parentheses" => Box::new(nested_brackets),
        "quotes" => Box::new(nested_quotes),
        "options" => options(args.string("options")?)?,
        "newline" => Box::new(|v| {
            let stripped = without_punctuation(v);
            let lines = python::strip(&stripped)
                .split('\n')
                .filter(|l| !l.is_empty())
                .count();
            lines == split(python::strip(&stripped)).len()
        }),
        "emoji" => Box::new(emoji_ends_sentences),
        "line_indent" => Box::new(indent_stairs),
        "quote_unquote" => Box::new(|v| {
            let squeezed: String = split(&v.replace("'\"'", "")).concat();
            if squeezed.contains("\"\"") {
                return false;
            }
            let strip_set: String = format!("0123456789{}", PUNCTUATION.replace('"', ""));
            !python::strip_chars(&squeezed, &strip_set).ends_with('"')
        }),
        "list" => {
            let separator = args.string("sep")?.to_string();
            Box::new(move |v| v.matches(separator.as_str()).count() >= 2)
        }
        "thesis" => Box::new(italic_thesis),
        "sub-bullets" => Box::new(|v| v.split('*').skip(1).all(|bullet| bullet.contains('-'))),
        "no_bullets_bullets" => Box::new(sentences_then_bullets),
        "title_case" => Box::new(|v| word_tokenize::tokens(v).all(|w| is_title_word(&w))),
        "output_template" => Box::new(|v| {
            ["My Answer:", "My Conclusion:", "Future Outlook:"]
                .iter()
                .all(|part| v.contains(part))
        }),
        "no_whitespace" => Box::new(|v| !v.chars().any(python::is_space)),
        _ => unreachable!("catalogue id format:{name}"),
    })
}

/// `NestedParenthesesChecker`: a group of at least 5 nested brackets closes; a mismatched closer
/// starts over.
fn nested_brackets(v: &str) -> bool {
    let mut open: Vec<char> = Vec::new();
    let mut deepest = 0;
    for c in v.chars() {
        match c {
            '(' | '[' | '{' => {
                open.push(c);
                deepest = deepest.max(open.len());
            }
            ')' | ']' | '}' => {
                let matching = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.last() == Some(&matching) {
                    open.pop();
                    if deepest >= 5 && open.len() < deepest {
                        return true;
                    }
                } else {
                    open.clear();
                    deepest = 0;
                }
            }
            _ => {}
        }
    }
    false
}

/// `NestedQuotesChecker`: quotes of either kind 3 deep, a quote closing the innermost open one
/// of the same kind.
fn nested_quotes(v: &str) -> bool {
    let mut open: Vec<char> = Vec::new();
    let (mut deepest, mut depth) = (0i64, 0i64);
    for c in v.chars() {
        if open.last() == Some(&c) {
            open.pop();
            depth -= 1;
            if deepest - depth >= 3 {
                return true;
            }
        } else if c == '"' || c == '\'' {
            open.push(c);
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    false
}

/// `OptionsResponseChecker`: the whole answer is one of the options; letter options ("a), b),
/// c)") must match exactly, others up to case and surrounding punctuation.
fn options(text: &str) -> Result<Check, String> {
    let letters = python::compile(r"\W*[aA]\W*[bB]\W*[cC]\W*", false, false)?;
    let exact = letters
        .find(text)
        .ok()
        .flatten()
        .is_some_and(|m| m.start() == 0);
    // `"or" in options` is a substring test, as in IFBench.
    let separator = if text.contains('/') {
        "/"
    } else if text.contains("or") {
        "or"
    } else {
        ","
    };
    let options: Vec<String> = text
        .split(separator)
        .map(|o| python::strip(o).to_string())
        .collect();
    Ok(if exact {
        Box::new(move |v| options.iter().any(|o| o == v))
    } else {
        let options: Vec<String> = options
            .iter()
            .map(|o| python::lower(strip_punctuation(o)))
            .collect();
        Box::new(move |v| {
            let answer = python::lower(strip_punctuation(v));
            options.contains(&answer)
        })
    })
}

/// `EmojiSentenceChecker`: every sentence ends with an emoji (one of its last two characters once
/// punctuation and spaces are gone), or the next sentence starts with one.
fn emoji_ends_sentences(v: &str) -> bool {
    let sentences = sentences(v);
    let bare = |s: &str| -> Vec<char> { python::strip(&without_punctuation(s)).chars().collect() };
    for (i, sentence) in sentences.iter().enumerate() {
        let chars = bare(sentence);
        let Some(&last) = chars.last() else {
            return false;
        };
        let second_last = if chars.len() > 1 {
            chars[chars.len() - 2]
        } else {
            last
        };
        if is_emoji(last) || is_emoji(second_last) {
            continue;
        }
        let Some(next) = sentences.get(i + 1) else {
            return false;
        };
        match bare(next).first() {
            Some(&first) if is_emoji(first) => {}
            _ => return false,
        }
    }
    true
}

/// `IndentStairsChecker`: each line is indented by more spaces than the one before. Blank lines
/// are dropped the way IFBench drops them: `lines.remove(line)` while iterating over `lines`,
/// which skips the line after each one removed.
fn indent_stairs(v: &str) -> bool {
    let mut lines: Vec<&str> = v.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if python::strip(line).is_empty() {
            let first = lines
                .iter()
                .position(|l| *l == line)
                .expect("the line is in the list");
            lines.remove(first);
        }
        i += 1;
    }
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    lines.windows(2).all(|p| indent(p[1]) > indent(p[0]))
}

/// `ItalicsThesisChecker`: an `<i>` (or `<em>`) thesis that is not blank, then more text.
fn italic_thesis(v: &str) -> bool {
    let Some(start) = v.find("<i>").or_else(|| v.find("<em>")) else {
        return false;
    };
    let v = &v[start..];
    let Some(end) = v.find("</i>").or_else(|| v.find("</em>")) else {
        return false;
    };
    // IFBench slices 3 and 4 characters whichever tag it found.
    let thesis = if end > 3 { &v[3..end] } else { "" };
    !python::strip(thesis).is_empty() && !python::strip(&v[end + 4..]).is_empty()
}

/// `SomeBulletPointsChecker`: lines of at least two sentences, then only `*` bullets, two or more.
fn sentences_then_bullets(v: &str) -> bool {
    let (mut in_sentences, mut sentence_count, mut bullets) = (true, 0, 0);
    for line in v.split('\n') {
        if python::strip(line).starts_with('*') {
            in_sentences = false;
            if sentence_count < 2 {
                return false;
            }
            bullets += 1;
        } else if in_sentences {
            let found = sentences(python::strip(line)).len();
            sentence_count += found;
            // IFBench reuses its flag for the line's list of sentences: after a blank line (an
            // empty list, falsy) only bullets may follow.
            in_sentences = found > 0;
        } else {
            return false;
        }
    }
    bullets >= 2
}

/// One token of `TitleCaseChecker`.
fn is_title_word(word: &str) -> bool {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return true;
    };
    if !python::is_alpha_char(first) {
        return true;
    }
    let first_text = first.encode_utf8(&mut [0; 4]).to_string();
    let rest = chars.as_str();
    if rest.is_empty() {
        return !python::is_lower(&first_text);
    }
    let first_lower = python::is_lower(&first_text);
    !(first_lower && (python::is_upper(rest) || python::is_lower(rest)))
}

#[cfg(test)]
mod tests {
    fn check(name: &str, args: &str, v: &str) -> bool {
        crate::checks::follows(&format!("format:{name}"), args, v)
    }

    #[test]
    fn a_mismatched_closer_resets_the_nesting() {
        assert!(check("parentheses", "{}", "(a [b {c (d [e] d) c} b] a)"));
        assert!(!check("parentheses", "{}", "(a [b {c (d ] e) c} b] a)"));
    }

    #[test]
    fn quotes_nest_three_deep() {
        assert!(check(
            "quotes",
            "{}",
            r#"He said "she said 'they said "hi"' ok" done"#
        ));
        assert!(!check("quotes", "{}", r#"He said "she said 'hi' ok" done"#));
    }

    #[test]
    fn letter_options_match_exactly_and_text_options_loosely() {
        assert!(check("options", r#"{"options": "a), b), c), d)"}"#, "b)"));
        assert!(!check("options", r#"{"options": "a), b), c), d)"}"#, "B)"));
        assert!(check("options", r#"{"options": "yes/no/maybe"}"#, "Maybe."));
        // "I know or I don't know" splits on "or".
        assert!(check(
            "options",
            r#"{"options": "I know or I don't know"}"#,
            "i know"
        ));
    }

    #[test]
    fn stairs_skip_the_line_after_a_removed_blank_one() {
        assert!(check("line_indent", "{}", "a\n b\n  c"));
        assert!(!check("line_indent", "{}", "a\n b\n c"));
        // Of two blank lines in a row only the first is removed (the second is skipped over), and
        // the blank line left is indented less than "a" before it.
        assert!(check("line_indent", "{}", "a\n\n x\n  y"));
        assert!(!check("line_indent", "{}", "a\n\n\n b"));
    }

    #[test]
    fn an_emoji_may_start_the_next_sentence_instead() {
        assert!(check("emoji", "{}", "Hello 😀. Bye 👋!"));
        assert!(!check("emoji", "{}", "Hello. Bye 👋!"));
    }

    #[test]
    fn title_case_allows_all_caps_but_not_lower_words() {
        assert!(check("title_case", "{}", "The NASA Report Is Here"));
        assert!(!check("title_case", "{}", "The Report is Here"));
        assert!(!check("title_case", "{}", "The Report Of a Day"));
    }

    #[test]
    fn a_thesis_in_italics_then_text() {
        assert!(check("thesis", "{}", "<i>Cats rule.</i> Because."));
        assert!(!check("thesis", "{}", "<i> </i> Because."));
        assert!(!check("thesis", "{}", "<i>Cats rule.</i>"));
    }

    #[test]
    fn quoted_phrases_need_an_explanation() {
        assert!(check(
            "quote_unquote",
            "{}",
            r#""Carpe diem" means seize the day."#
        ));
        assert!(!check("quote_unquote", "{}", r#"He said "hi" "bye""#));
        assert!(!check("quote_unquote", "{}", r#"The end: "bye"."#));
    }
}
