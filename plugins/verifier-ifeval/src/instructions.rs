//! The 25 IFEval instructions: their arguments, their description sentences and their checks,
//! transcribed from the official checker (`instructions.py`), quirks included. Each quirk that
//! matters is pinned by a unit test named after it.

use fancy_regex::Regex;

use crate::args::{Args, Relation};
use crate::{json_syntax, language};
use nltk_text::{punkt, python, word_tokenize};

/// The catalogue: instruction id, argument names, one-line description, JSON Schema of the
/// arguments.
pub const CATALOGUE: &[(&str, &[&str], &str)] = &[
    (
        "keywords:existence",
        &["keywords"],
        "Include every keyword (a regular expression, case-insensitive).",
    ),
    (
        "keywords:frequency",
        &["keyword", "frequency", "relation"],
        "A keyword appears less than / at least N times.",
    ),
    (
        "keywords:forbidden_words",
        &["forbidden_words"],
        "None of the words appears as a whole word.",
    ),
    (
        "keywords:letter_frequency",
        &["letter", "let_frequency", "let_relation"],
        "A letter appears less than / at least N times.",
    ),
    (
        "language:response_language",
        &["language"],
        "The whole response is in the given language (ISO 639-1).",
    ),
    (
        "length_constraints:number_sentences",
        &["num_sentences", "relation"],
        "Less than / at least N sentences (Punkt).",
    ),
    (
        "length_constraints:number_paragraphs",
        &["num_paragraphs"],
        "Exactly N paragraphs separated by ***.",
    ),
    (
        "length_constraints:number_words",
        &["num_words", "relation"],
        "Less than / at least N words.",
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        &["num_paragraphs", "nth_paragraph", "first_word"],
        "N paragraphs separated by blank lines; paragraph i starts with a given word.",
    ),
    (
        "detectable_content:number_placeholders",
        &["num_placeholders"],
        "At least N placeholders in square brackets.",
    ),
    (
        "detectable_content:postscript",
        &["postscript_marker"],
        "Ends with a postscript starting with the marker.",
    ),
    (
        "detectable_format:number_bullet_lists",
        &["num_bullets"],
        "Exactly N markdown bullet points.",
    ),
    (
        "detectable_format:constrained_response",
        &[],
        "Answers with one of: My answer is yes./no./maybe.",
    ),
    (
        "detectable_format:number_highlighted_sections",
        &["num_highlights"],
        "At least N *highlighted* sections.",
    ),
    (
        "detectable_format:multiple_sections",
        &["section_spliter", "num_sections"],
        "At least N sections marked `SPLITTER i`.",
    ),
    (
        "detectable_format:json_format",
        &[],
        "The whole output is JSON (markdown fences allowed).",
    ),
    (
        "detectable_format:title",
        &[],
        "Contains a title in double angular brackets, <<like this>>.",
    ),
    (
        "combination:two_responses",
        &[],
        "Two different responses separated by ******.",
    ),
    (
        "combination:repeat_prompt",
        &["prompt_to_repeat"],
        "Starts by repeating the request word for word.",
    ),
    (
        "startend:end_checker",
        &["end_phrase"],
        "Ends with the exact phrase.",
    ),
    (
        "change_case:capital_word_frequency",
        &["capital_frequency", "capital_relation"],
        "Less than / at least N words in all capital letters.",
    ),
    (
        "change_case:english_capital",
        &[],
        "English, all capital letters.",
    ),
    (
        "change_case:english_lowercase",
        &[],
        "English, all lowercase letters.",
    ),
    ("punctuation:no_comma", &[], "No commas at all."),
    (
        "startend:quotation",
        &[],
        "Wrapped in double quotation marks.",
    ),
];

/// The argument names an instruction takes, or `None` for an unknown id.
pub fn argument_names(id: &str) -> Option<&'static [&'static str]> {
    CATALOGUE
        .iter()
        .find(|(known, _, _)| *known == id)
        .map(|(_, names, _)| *names)
}

/// The words `keywords:*` arguments are drawn from in synthesised prompts.
const SYNTH_WORDS: &str =
    r#"["river","window","garden","signal","marble","harvest","lantern","compass"]"#;

/// JSON Schema of an instruction's arguments, with what a prompt generator may draw for each
/// (the ranges of the official generator's; see `wit/verifier.wit` for the `x-spar-` keywords).
pub fn args_schema(id: &str) -> String {
    let names = argument_names(id).unwrap_or(&[]);
    let relation = r#"{"type":"string","enum":["less than","at least"]}"#;
    let words = format!(r#"{{"type":"string","enum":{SYNTH_WORDS}}}"#);
    let property = |name: &str| -> String {
        let hint = match (id, name) {
            (_, "relation" | "let_relation" | "capital_relation") if id != "keywords:frequency" => {
                relation.to_string()
            }
            ("keywords:frequency", "relation") => r#"{"type":"string","enum":["at least"]}"#.into(),
            ("keywords:frequency", "keyword") => words.clone(),
            ("keywords:frequency", "frequency") => r#"{"type":"integer","minimum":1,"maximum":3}"#.into(),
            ("keywords:existence", _) => format!(
                r#"{{"type":"array","items":{{"type":"string","enum":{SYNTH_WORDS}}},"minItems":1,"maxItems":2}}"#
            ),
            ("keywords:forbidden_words", _) => format!(
                r#"{{"type":"array","items":{{"type":"string","enum":{}}},"minItems":2,"maxItems":2}}"#,
                SYNTH_WORDS.replace(']', r#","very"]"#)
            ),
            ("keywords:letter_frequency", "letter") => {
                r#"{"type":"string","enum":["a","e","o","t","z","q"]}"#.into()
            }
            ("keywords:letter_frequency", _) => r#"{"type":"integer","minimum":2,"maximum":9}"#.into(),
            ("length_constraints:number_sentences", _) => {
                r#"{"type":"integer","minimum":2,"maximum":7}"#.into()
            }
            ("length_constraints:number_paragraphs", _) => {
                r#"{"type":"integer","minimum":2,"maximum":4}"#.into()
            }
            ("detectable_content:number_placeholders", _)
            | ("detectable_format:number_highlighted_sections", _) => {
                r#"{"type":"integer","minimum":1,"maximum":3}"#.into()
            }
            ("detectable_content:postscript", _) => {
                r#"{"type":"string","enum":["P.S.","P.P.S"]}"#.into()
            }
            ("detectable_format:number_bullet_lists", _) => {
                r#"{"type":"integer","minimum":2,"maximum":5}"#.into()
            }
            ("startend:end_checker", _) => {
                r#"{"type":"string","enum":["Any other questions?","Is there anything else I can help with?"]}"#.into()
            }
            ("change_case:capital_word_frequency", _) => {
                r#"{"type":"integer","minimum":1,"maximum":5}"#.into()
            }
            ("combination:repeat_prompt", _) => r#"{"type":"string","x-spar-fill":"task"}"#.into(),
            (_, "keywords" | "forbidden_words") => {
                r#"{"type":"array","items":{"type":"string"}}"#.into()
            }
            (_, n) if n.starts_with("num_") || n.ends_with("frequency") || n == "nth_paragraph" => {
                r#"{"type":"integer"}"#.into()
            }
            _ => r#"{"type":"string"}"#.into(),
        };
        format!("\"{name}\":{hint}")
    };
    let properties: Vec<String> = names.iter().map(|n| property(n)).collect();
    let mut extra = String::new();
    match id {
        // The word limits depend on the relation, as in the official generator.
        "length_constraints:number_words" => {
            let mut examples: Vec<String> = (0..6)
                .map(|i| format!(r#"{{"num_words":{},"relation":"less than"}}"#, 50 + 25 * i))
                .collect();
            examples.extend(
                (0..5).map(|i| format!(r#"{{"num_words":{},"relation":"at least"}}"#, 40 + 20 * i)),
            );
            extra = format!(r#","examples":[{}]"#, examples.join(","));
        }
        // The answer's whole shape is fixed: no second constraint fits beside it.
        "detectable_format:json_format"
        | "detectable_format:constrained_response"
        | "combination:two_responses"
        | "combination:repeat_prompt" => extra = r#","x-spar-alone":true"#.into(),
        _ if id.starts_with("change_case:") => {
            let others: Vec<String> = CATALOGUE
                .iter()
                .map(|(other, _, _)| *other)
                .filter(|other| other.starts_with("change_case:") && *other != id)
                .map(|other| format!("\"{other}\""))
                .collect();
            extra = format!(r#","x-spar-conflicts":[{}]"#, others.join(","));
        }
        _ => {}
    }
    format!(
        r#"{{"type":"object","properties":{{{}}},"required":[{}],"additionalProperties":false{extra}}}"#,
        properties.join(","),
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// One instruction with its arguments, ready to check responses.
pub enum Instruction {
    KeywordsExistence(Vec<Regex>),
    KeywordFrequency {
        keyword: Regex,
        frequency: i64,
        relation: Relation,
    },
    ForbiddenWords(Vec<python::WholeWord>),
    LetterFrequency {
        letter: String,
        frequency: i64,
        relation: Relation,
    },
    ResponseLanguage(String),
    NumberSentences {
        num: i64,
        relation: Relation,
    },
    NumberParagraphs(i64),
    NumberWords {
        num: i64,
        relation: Relation,
    },
    NthParagraphFirstWord {
        num_paragraphs: i64,
        nth: i64,
        first_word: String,
    },
    Placeholders(i64),
    Postscript(Regex),
    BulletLists(i64),
    ConstrainedResponse,
    HighlightedSections(i64),
    MultipleSections {
        splitter: Regex,
        num_sections: i64,
    },
    JsonFormat,
    Title,
    TwoResponses,
    RepeatPrompt(String),
    EndChecker(String),
    CapitalWordFrequency {
        frequency: i64,
        relation: Relation,
    },
    EnglishCapital,
    EnglishLowercase,
    NoComma,
    Quotation,
}

const CONSTRAINED_RESPONSE_OPTIONS: [&str; 3] = [
    "My answer is yes.",
    "My answer is no.",
    "My answer is maybe.",
];

fn non_negative(args: &Args, name: &str) -> Result<i64, String> {
    let value = args.int(name)?;
    if value < 0 {
        return Err(format!(
            "argument `{name}` must not be negative, got {value}"
        ));
    }
    Ok(value)
}

impl Instruction {
    /// Build instruction `id` from its JSON arguments.
    pub fn new(id: &str, args_json: &str) -> Result<Instruction, String> {
        let names = argument_names(id).ok_or_else(|| format!("unknown instruction id `{id}`"))?;
        let args = Args::parse(args_json, names)?;
        Ok(match id {
            "keywords:existence" => Instruction::KeywordsExistence(
                args.string_list("keywords")?
                    .iter()
                    .map(|k| python::compile(k, true, false))
                    .collect::<Result<_, _>>()?,
            ),
            "keywords:frequency" => Instruction::KeywordFrequency {
                keyword: python::compile(python::strip(args.string("keyword")?), true, false)?,
                frequency: non_negative(&args, "frequency")?,
                relation: args.relation("relation")?,
            },
            "keywords:forbidden_words" => Instruction::ForbiddenWords(
                args.string_list("forbidden_words")?
                    .iter()
                    .map(|w| python::WholeWord::new(w))
                    .collect::<Result<_, _>>()?,
            ),
            "keywords:letter_frequency" => {
                let letter = python::strip(args.string("letter")?);
                if letter.chars().count() != 1 {
                    return Err(format!(
                        "argument `letter` must be a single letter, got {letter:?}"
                    ));
                }
                Instruction::LetterFrequency {
                    letter: python::lower(letter),
                    frequency: non_negative(&args, "let_frequency")?,
                    relation: args.relation("let_relation")?,
                }
            }
            "language:response_language" => {
                Instruction::ResponseLanguage(args.string("language")?.to_string())
            }
            "length_constraints:number_sentences" => Instruction::NumberSentences {
                num: non_negative(&args, "num_sentences")?,
                relation: args.relation("relation")?,
            },
            "length_constraints:number_paragraphs" => {
                Instruction::NumberParagraphs(non_negative(&args, "num_paragraphs")?)
            }
            "length_constraints:number_words" => Instruction::NumberWords {
                num: non_negative(&args, "num_words")?,
                relation: args.relation("relation")?,
            },
            "length_constraints:nth_paragraph_first_word" => {
                let num_paragraphs = non_negative(&args, "num_paragraphs")?;
                let nth = args.int("nth_paragraph")?;
                if nth <= 0 || nth > num_paragraphs {
                    return Err(format!(
                        "argument `nth_paragraph` must be between 1 and num_paragraphs ({num_paragraphs}), got {nth}"
                    ));
                }
                Instruction::NthParagraphFirstWord {
                    num_paragraphs,
                    nth,
                    first_word: python::lower(args.string("first_word")?),
                }
            }
            "detectable_content:number_placeholders" => {
                Instruction::Placeholders(non_negative(&args, "num_placeholders")?)
            }
            "detectable_content:postscript" => {
                let marker = python::strip(args.string("postscript_marker")?);
                let pattern = match marker {
                    "P.P.S" => r"\s*p\.\s?p\.\s?s.*$".to_string(),
                    "P.S." => r"\s*p\.\s?s\..*$".to_string(),
                    other => format!(r"\s*{}.*$", python::lower(other)),
                };
                Instruction::Postscript(python::compile(&pattern, false, true)?)
            }
            "detectable_format:number_bullet_lists" => {
                Instruction::BulletLists(non_negative(&args, "num_bullets")?)
            }
            "detectable_format:constrained_response" => Instruction::ConstrainedResponse,
            "detectable_format:number_highlighted_sections" => {
                Instruction::HighlightedSections(non_negative(&args, "num_highlights")?)
            }
            "detectable_format:multiple_sections" => {
                let splitter = python::strip(args.string("section_spliter")?);
                Instruction::MultipleSections {
                    splitter: python::compile(&format!(r"\s?{splitter}\s?\d+\s?"), false, false)?,
                    num_sections: non_negative(&args, "num_sections")?,
                }
            }
            "detectable_format:json_format" => Instruction::JsonFormat,
            "detectable_format:title" => Instruction::Title,
            "combination:two_responses" => Instruction::TwoResponses,
            "combination:repeat_prompt" => {
                Instruction::RepeatPrompt(args.string("prompt_to_repeat")?.to_string())
            }
            "startend:end_checker" => {
                Instruction::EndChecker(python::strip(args.string("end_phrase")?).to_string())
            }
            "change_case:capital_word_frequency" => Instruction::CapitalWordFrequency {
                frequency: args.int("capital_frequency")?,
                relation: args.relation("capital_relation")?,
            },
            "change_case:english_capital" => Instruction::EnglishCapital,
            "change_case:english_lowercase" => Instruction::EnglishLowercase,
            "punctuation:no_comma" => Instruction::NoComma,
            "startend:quotation" => Instruction::Quotation,
            _ => unreachable!("every catalogue id is handled"),
        })
    }

    /// `check_following(value)` of the official checker.
    pub fn follows(&self, value: &str) -> bool {
        match self {
            Instruction::KeywordsExistence(keywords) => {
                keywords.iter().all(|k| python::is_match(k, value))
            }
            Instruction::KeywordFrequency {
                keyword,
                frequency,
                relation,
            } => relation.holds(python::count_matches(keyword, value), *frequency),
            Instruction::ForbiddenWords(words) => !words.iter().any(|w| w.is_match(value)),
            Instruction::LetterFrequency {
                letter,
                frequency,
                relation,
            } => {
                let count = python::lower(value).matches(letter.as_str()).count();
                relation.holds(count, *frequency)
            }
            Instruction::ResponseLanguage(expected) => {
                language::detect(value).is_none_or(|found| found == expected)
            }
            Instruction::NumberSentences { num, relation } => {
                relation.holds(punkt::count_sentences(value), *num)
            }
            Instruction::NumberParagraphs(expected) => number_paragraphs(value, *expected),
            Instruction::NumberWords { num, relation } => relation.holds(count_words(value), *num),
            Instruction::NthParagraphFirstWord {
                num_paragraphs,
                nth,
                first_word,
            } => nth_paragraph_first_word(value, *num_paragraphs, *nth, first_word),
            Instruction::Placeholders(expected) => {
                let placeholders = static_regex(&PLACEHOLDER, r"\[.*?\]", false);
                python::count_matches(placeholders, value) as i64 >= *expected
            }
            Instruction::Postscript(pattern) => python::is_match(pattern, &python::lower(value)),
            Instruction::BulletLists(expected) => {
                let star = static_regex(&BULLET_STAR, r"^\s*\*[^\*].*$", true);
                let dash = static_regex(&BULLET_DASH, r"^\s*-.*$", true);
                (python::count_matches(star, value) + python::count_matches(dash, value)) as i64
                    == *expected
            }
            Instruction::ConstrainedResponse => {
                let value = python::strip(value);
                CONSTRAINED_RESPONSE_OPTIONS
                    .iter()
                    .any(|o| value.contains(o))
            }
            Instruction::HighlightedSections(expected) => highlighted_sections(value) >= *expected,
            Instruction::MultipleSections {
                splitter,
                num_sections,
            } => {
                let sections = python::split(splitter, value).len() as i64 - 1;
                sections >= *num_sections
            }
            Instruction::JsonFormat => {
                let mut v = python::strip(value);
                for prefix in ["```json", "```Json", "```JSON", "```"] {
                    v = v.strip_prefix(prefix).unwrap_or(v);
                }
                v = v.strip_suffix("```").unwrap_or(v);
                json_syntax::python_json_loads_ok(python::strip(v))
            }
            Instruction::Title => {
                let titles = static_regex(&TITLE, r"<<[^\n]+>>", false);
                titles.find_iter(value).flatten().any(|t| {
                    let inner = t.as_str().trim_start_matches('<').trim_end_matches('>');
                    !python::strip(inner).is_empty()
                })
            }
            Instruction::TwoResponses => two_responses(value),
            Instruction::RepeatPrompt(prompt) => python::lower(python::strip(value))
                .starts_with(&python::lower(python::strip(prompt))),
            Instruction::EndChecker(phrase) => {
                let value = python::lower(python::strip(value).trim_matches('"'));
                value.ends_with(&python::lower(python::strip(phrase)))
            }
            Instruction::CapitalWordFrequency {
                frequency,
                relation,
            } => {
                let capital = word_tokenize::word_tokenize(value)
                    .iter()
                    .filter(|w| python::is_upper(w))
                    .count();
                relation.holds(capital, *frequency)
            }
            Instruction::EnglishCapital => {
                python::is_upper(value) && language::detect(value).is_none_or(|l| l == "en")
            }
            Instruction::EnglishLowercase => {
                python::is_lower(value) && language::detect(value).is_none_or(|l| l == "en")
            }
            Instruction::NoComma => !value.contains(','),
            Instruction::Quotation => {
                let value = python::strip(value);
                value.chars().count() > 1 && value.starts_with('"') && value.ends_with('"')
            }
        }
    }
}

static PLACEHOLDER: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static BULLET_STAR: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static BULLET_DASH: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static TITLE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static HIGHLIGHT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static DOUBLE_HIGHLIGHT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static PARAGRAPH_DIVIDER: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static WORDS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();

fn static_regex<'r>(
    cell: &'r std::sync::OnceLock<Regex>,
    pattern: &str,
    multiline: bool,
) -> &'r Regex {
    cell.get_or_init(|| python::compile(pattern, false, multiline).expect("built-in pattern"))
}

/// `instructions_util.count_words`: `RegexpTokenizer(r"\w+")` tokens.
pub fn count_words(text: &str) -> usize {
    python::count_matches(static_regex(&WORDS, r"\w+", false), text)
}

fn highlighted_sections(value: &str) -> i64 {
    let single = static_regex(&HIGHLIGHT, r"\*[^\n\*]*\*", false);
    let double = static_regex(&DOUBLE_HIGHLIGHT, r"\*\*[^\n\*]*\*\*", false);
    let mut count = 0;
    for h in single.find_iter(value).flatten() {
        if !python::strip(h.as_str().trim_matches('*')).is_empty() {
            count += 1;
        }
    }
    for h in double.find_iter(value).flatten() {
        let inner = &h.as_str()[2..h.as_str().len() - 2];
        if !python::strip(inner).is_empty() {
            count += 1;
        }
    }
    count
}

fn number_paragraphs(value: &str, expected: i64) -> bool {
    let divider = static_regex(&PARAGRAPH_DIVIDER, r"\s?\*\*\*\s?", false);
    let paragraphs = python::split(divider, value);
    let mut count = paragraphs.len() as i64;
    let last = paragraphs.len() - 1;
    for (index, paragraph) in paragraphs.iter().enumerate() {
        if python::strip(paragraph).is_empty() {
            if index == 0 || index == last {
                count -= 1;
            } else {
                return false;
            }
        }
    }
    count == expected
}

fn nth_paragraph_first_word(value: &str, num_paragraphs: i64, nth: i64, expected: &str) -> bool {
    let paragraphs: Vec<&str> = value.split("\n\n").collect();
    let non_empty = paragraphs
        .iter()
        .filter(|p| !python::strip(p).is_empty())
        .count() as i64;
    // Sic: `nth` indexes all pieces, empty ones included, but is bounded by the non-empty count.
    if nth > non_empty {
        return false;
    }
    let paragraph = python::strip(paragraphs[(nth - 1) as usize]);
    let Some(word) = python::split_whitespace(paragraph).next() else {
        return false;
    };
    let word = word.trim_start_matches('\'').trim_start_matches('"');
    let mut first_word = String::new();
    for letter in word.chars() {
        if matches!(letter, '.' | ',' | '?' | '!' | '\'' | '"') {
            break;
        }
        first_word.push_str(&letter.to_lowercase().to_string());
    }
    non_empty == num_paragraphs && first_word == expected
}

fn two_responses(value: &str) -> bool {
    let responses: Vec<&str> = value.split("******").collect();
    let last = responses.len() - 1;
    let mut valid = Vec::new();
    for (index, response) in responses.iter().enumerate() {
        if python::strip(response).is_empty() {
            if index != 0 && index != last {
                return false;
            }
        } else {
            valid.push(*response);
        }
    }
    valid.len() == 2 && python::strip(valid[0]) != python::strip(valid[1])
}

/// Python's `repr` of a list of strings, as the official descriptions print keyword lists.
fn python_list_repr(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        })
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The official instruction sentence for `id` with `args_json`.
pub fn describe(id: &str, args_json: &str) -> Result<String, String> {
    // Validates the arguments the same way `check` does.
    Instruction::new(id, args_json)?;
    let names = argument_names(id).unwrap_or(&[]);
    let args = Args::parse(args_json, names)?;
    let text = |name: &str| args.string(name).map(|s| python::strip(s).to_string());
    let int = |name: &str| args.int(name);
    Ok(match id {
        "keywords:existence" => {
            let mut keywords = args.string_list("keywords")?;
            keywords.sort();
            format!("Include keywords {} in the response.", python_list_repr(&keywords))
        }
        "keywords:frequency" => format!(
            "In your response, the word {} should appear {} {} times.",
            text("keyword")?,
            args.relation("relation")?.as_str(),
            int("frequency")?
        ),
        "keywords:forbidden_words" => {
            let mut words = args.string_list("forbidden_words")?;
            words.sort();
            words.dedup();
            format!("Do not include keywords {} in the response.", python_list_repr(&words))
        }
        "keywords:letter_frequency" => format!(
            "In your response, the letter {} should appear {} {} times.",
            python::lower(&text("letter")?),
            args.relation("let_relation")?.as_str(),
            int("let_frequency")?
        ),
        "language:response_language" => {
            let code = text("language")?;
            format!(
                "Your ENTIRE response should be in {} language, no other language is allowed.",
                language_name(&code).unwrap_or(&code)
            )
        }
        "length_constraints:number_sentences" => format!(
            "Your response should contain {} {} sentences.",
            args.relation("relation")?.as_str(),
            int("num_sentences")?
        ),
        "length_constraints:number_paragraphs" => format!(
            "There should be {} paragraphs. Paragraphs are separated with the markdown divider: ***",
            int("num_paragraphs")?
        ),
        "length_constraints:number_words" => format!(
            "Answer with {} {} words.",
            args.relation("relation")?.as_str(),
            int("num_words")?
        ),
        "length_constraints:nth_paragraph_first_word" => format!(
            "There should be {} paragraphs. Paragraphs and only paragraphs are separated with each other by two new lines as if it was '\\n\\n' in python. Paragraph {} must start with word {}.",
            int("num_paragraphs")?,
            int("nth_paragraph")?,
            python::lower(&text("first_word")?)
        ),
        "detectable_content:number_placeholders" => format!(
            "The response must contain at least {} placeholders represented by square brackets, such as [address].",
            int("num_placeholders")?
        ),
        "detectable_content:postscript" => format!(
            "At the end of your response, please explicitly add a postscript starting with {}",
            text("postscript_marker")?
        ),
        "detectable_format:number_bullet_lists" => format!(
            "Your answer must contain exactly {} bullet points. Use the markdown bullet points such as:\n* This is point 1. \n* This is point 2",
            int("num_bullets")?
        ),
        "detectable_format:constrained_response" => {
            "Answer with one of the following options: ('My answer is yes.', 'My answer is no.', 'My answer is maybe.')".to_string()
        }
        "detectable_format:number_highlighted_sections" => format!(
            "Highlight at least {} sections in your answer with markdown, i.e. *highlighted section*.",
            int("num_highlights")?
        ),
        "detectable_format:multiple_sections" => {
            let s = text("section_spliter")?;
            format!(
                "Your response must have {} sections. Mark the beginning of each section with {s} X, such as:\n{s} 1\n[content of section 1]\n{s} 2\n[content of section 2]",
                int("num_sections")?
            )
        }
        "detectable_format:json_format" => {
            "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.".to_string()
        }
        "detectable_format:title" => {
            "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.".to_string()
        }
        "combination:two_responses" => {
            "Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******.".to_string()
        }
        "combination:repeat_prompt" => {
            "First repeat the request word for word without change, then give your answer (1. do not say any words or characters before repeating the request; 2. the request you need to repeat does not include this sentence)".to_string()
        }
        "startend:end_checker" => format!(
            "Finish your response with this exact phrase {}. No other words should follow this phrase.",
            text("end_phrase")?
        ),
        "change_case:capital_word_frequency" => format!(
            "In your response, words with all capital letters should appear {} {} times.",
            args.relation("capital_relation")?.as_str(),
            int("capital_frequency")?
        ),
        "change_case:english_capital" => {
            "Your entire response should be in English, and in all capital letters.".to_string()
        }
        "change_case:english_lowercase" => {
            "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed.".to_string()
        }
        "punctuation:no_comma" => {
            "In your entire response, refrain from the use of any commas.".to_string()
        }
        "startend:quotation" => {
            "Wrap your entire response with double quotation marks.".to_string()
        }
        other => return Err(format!("unknown instruction id `{other}`")),
    })
}

/// Language names as the official descriptions print them (`instructions_util.LANGUAGE_CODES`).
fn language_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "en" => "English",
        "es" => "Spanish",
        "pt" => "Portuguese",
        "ar" => "Arabic",
        "hi" => "Hindi",
        "fr" => "French",
        "ru" => "Russian",
        "de" => "German",
        "ja" => "Japanese",
        "it" => "Italian",
        "bn" => "Bengali",
        "uk" => "Ukrainian",
        "th" => "Thai",
        "ur" => "Urdu",
        "ta" => "Tamil",
        "te" => "Telugu",
        "bg" => "Bulgarian",
        "ko" => "Korean",
        "pl" => "Polish",
        "he" => "Hebrew",
        "fa" => "Persian",
        "vi" => "Vietnamese",
        "ne" => "Nepali",
        "sw" => "Swahili",
        "kn" => "Kannada",
        "mr" => "Marathi",
        "gu" => "Gujarati",
        "pa" => "Punjabi",
        "ml" => "Malayalam",
        "fi" => "Finnish",
        _ => return None,
    })
}
