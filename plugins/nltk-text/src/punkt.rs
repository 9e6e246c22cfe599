//! NLTK's Punkt sentence tokenizer with its English parameters: the official checker counts
//! sentences with it (`length_constraints:number_sentences`), and `nltk.word_tokenize` splits
//! sentences with it first. A port of `nltk.tokenize.punkt.PunktSentenceTokenizer.tokenize`
//! (nltk 3.9+, realign_boundaries=True) that keeps its quirks.

use std::sync::OnceLock;

use fancy_regex::Regex;

use crate::python;

mod params {
    include!(concat!(env!("OUT_DIR"), "/punkt_params.rs"));
}

const ORTHO_BEG_UC: u32 = 1 << 1;
const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UNK_UC: u32 = 1 << 3;
const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_LC: u32 = 1 << 5;
const ORTHO_UNK_LC: u32 = 1 << 6;
const ORTHO_UC: u32 = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC;
const ORTHO_LC: u32 = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC;

/// Characters that may end a sentence.
const SENT_END_CHARS: [char; 3] = ['.', '?', '!'];

/// `PunktLanguageVars._re_non_word_chars`: characters that cannot appear within words.
fn is_non_word_char(c: char) -> bool {
    matches!(
        c,
        ')' | '"'
            | ';'
            | '}'
            | ']'
            | '*'
            | ':'
            | '@'
            | '\''
            | '('
            | '{'
            | '['
            | '\u{2018}'
            | '\u{2019}'
            | '\u{201c}'
            | '\u{201d}'
            | '\u{ab}'
            | '\u{bb}'
            | '?'
            | '!'
    )
}

fn is_abbrev(typ: &str) -> bool {
    params::ABBREV_TYPES.binary_search(&typ).is_ok()
}

fn is_sent_starter(typ: &str) -> bool {
    params::SENT_STARTERS.binary_search(&typ).is_ok()
}

fn is_collocation(a: &str, b: &str) -> bool {
    params::COLLOCATIONS
        .binary_search_by(|(x, y)| (*x, *y).cmp(&(a, b)))
        .is_ok()
}

fn ortho_context(typ: &str) -> u32 {
    params::ORTHO_CONTEXT
        .binary_search_by(|(t, _)| (*t).cmp(typ))
        .map(|i| params::ORTHO_CONTEXT[i].1)
        .unwrap_or(0)
}

struct Patterns {
    word_tokenizer: Regex,
    numeric: Regex,
    initial: Regex,
    ellipsis: Regex,
    boundary_realignment: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let non_word = r#"(?:[)\";}\]\*:@\'\({\[\u2018\u2019\u201c\u201d\xab\xbb\?!])"#;
        let multi_char = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)";
        let word_start = r#"[^\(\"\`{\[:;&\#\*@\)}\]\-,]"#;
        let word_tokenizer = format!(
            r"({multi_char}|(?={word_start})\S+?(?=\s|$|{non_word}|{multi_char}|,(?=$|\s|{non_word}|{multi_char}))|\S)"
        );
        let compile = |p: &str, multiline: bool| {
            python::compile(p, false, multiline).expect("built-in Punkt pattern compiles")
        };
        Patterns {
            word_tokenizer: compile(&word_tokenizer, false),
            // Tokens hold no newline, so `$` is `\z` here (and stays on the fast engine).
            numeric: compile(r"^-?[\.,]?\d[\d,\.-]*\.?\z", false),
            initial: compile(r"^[^\W\d]\.\z", false),
            ellipsis: compile(r"^\.\.+\z", false),
            boundary_realignment: compile(
                r#"^["\')\]}\u2018\u2019\u201c\u201d\xab\xbb]+?(?:\s+|(?=--)|$)"#,
                true,
            ),
        }
    })
}

/// A word token and its annotations (`PunktToken`).
struct Token<'t> {
    tok: &'t str,
    typ: String,
    period_final: bool,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

impl<'t> Token<'t> {
    fn new(tok: &'t str) -> Self {
        let lowered = python::lower(tok);
        let typ = if python::is_match(&patterns().numeric, &lowered) {
            "##number##".to_string()
        } else {
            lowered
        };
        Token {
            tok,
            typ,
            period_final: tok.ends_with('.'),
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    fn type_no_period(&self) -> &str {
        if self.typ.chars().count() > 1 && self.typ.ends_with('.') {
            &self.typ[..self.typ.len() - 1]
        } else {
            &self.typ
        }
    }

    fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    fn first_upper(&self) -> bool {
        self.tok
            .chars()
            .next()
            .is_some_and(|c| python::is_upper(&c.to_string()))
    }

    fn first_lower(&self) -> bool {
        self.tok
            .chars()
            .next()
            .is_some_and(|c| python::is_lower(&c.to_string()))
    }

    fn is_initial(&self) -> bool {
        python::is_match(&patterns().initial, self.tok)
    }
}

/// `_tokenize_words`: punkt's word tokens, line by line. (Line and paragraph starts are only read
/// by the trainer, so they are not tracked.)
fn tokenize_words(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    for line in text.split('\n') {
        if python::strip(line).is_empty() {
            continue;
        }
        for found in patterns().word_tokenizer.find_iter(line).flatten() {
            tokens.push(Token::new(found.as_str()));
        }
    }
    tokens
}

fn first_pass(token: &mut Token<'_>) {
    let tok = token.tok;
    if tok.len() == 1 && SENT_END_CHARS.contains(&tok.chars().next().unwrap()) {
        token.sentbreak = true;
    } else if python::is_match(&patterns().ellipsis, tok) {
        token.ellipsis = true;
    } else if token.period_final && !tok.ends_with("..") {
        let stem = python::lower(&tok[..tok.len() - 1]);
        let last_part = stem.rsplit('-').next().unwrap_or("");
        if is_abbrev(&stem) || is_abbrev(last_part) {
            token.abbr = true;
        } else {
            token.sentbreak = true;
        }
    }
}

enum Starter {
    Yes,
    No,
    Unknown,
}

/// `_ortho_heuristic`: is `token` the first of a sentence?
fn ortho_heuristic(token: &Token<'_>) -> Starter {
    if matches!(token.tok, ";" | ":" | "," | "." | "!" | "?") {
        return Starter::No;
    }
    let context = ortho_context(token.type_no_sentperiod());
    if token.first_upper() && context & ORTHO_LC != 0 && context & ORTHO_MID_UC == 0 {
        return Starter::Yes;
    }
    if token.first_lower() && (context & ORTHO_UC != 0 || context & ORTHO_BEG_LC == 0) {
        return Starter::No;
    }
    Starter::Unknown
}

/// `_second_pass_annotation` of `first` given the token after it.
fn second_pass(first: &mut Token<'_>, next: &Token<'_>) {
    if !first.period_final {
        return;
    }
    let typ = first.type_no_period().to_string();
    let next_typ = next.type_no_sentperiod();
    let is_initial = first.is_initial();
    if is_collocation(&typ, next_typ) {
        first.sentbreak = false;
        first.abbr = true;
        return;
    }
    if (first.abbr || first.ellipsis) && !is_initial {
        if matches!(ortho_heuristic(next), Starter::Yes) {
            first.sentbreak = true;
            return;
        }
        if next.first_upper() && is_sent_starter(next_typ) {
            first.sentbreak = true;
            return;
        }
    }
    if is_initial || typ == "##number##" {
        match ortho_heuristic(next) {
            Starter::No => {
                first.sentbreak = false;
                first.abbr = true;
            }
            Starter::Unknown
                if is_initial && next.first_upper() && ortho_context(next_typ) & ORTHO_LC == 0 =>
            {
                first.sentbreak = false;
                first.abbr = true;
            }
            _ => {}
        }
    }
}

/// `text_contains_sentbreak`: does any token but the last end a sentence?
fn contains_sentbreak(text: &str) -> bool {
    let mut tokens = tokenize_words(text);
    let n = tokens.len();
    tokens.iter_mut().for_each(first_pass);
    for i in 0..n {
        if i + 1 < n {
            let (head, tail) = tokens.split_at_mut(i + 1);
            second_pass(&mut head[i], &tail[0]);
        }
        if tokens[i].sentbreak && i + 1 < n {
            return true;
        }
    }
    false
}

/// One potential sentence end: the end character and the token after it.
struct EndContext {
    start: usize,
    end: usize,
    after_tok_end: usize,
    next_tok_start: Option<usize>,
}

/// `period_context_re().finditer`: every `.?!` followed by a non-word character or by
/// whitespace and a token.
fn period_contexts(text: &str) -> Vec<EndContext> {
    let mut found = Vec::new();
    for (start, c) in text.char_indices() {
        if !SENT_END_CHARS.contains(&c) {
            continue;
        }
        let end = start + c.len_utf8();
        let rest = &text[end..];
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, next)) if is_non_word_char(next) => found.push(EndContext {
                start,
                end,
                after_tok_end: end + next.len_utf8(),
                next_tok_start: None,
            }),
            Some((_, next)) if python::is_space(next) => {
                let token_start = rest
                    .char_indices()
                    .find(|(_, c)| !python::is_space(*c))
                    .map(|(i, _)| i);
                if let Some(token_start) = token_start {
                    let token_len = rest[token_start..]
                        .char_indices()
                        .find(|(_, c)| python::is_space(*c))
                        .map(|(i, _)| i)
                        .unwrap_or(rest.len() - token_start);
                    found.push(EndContext {
                        start,
                        end,
                        after_tok_end: end + token_start + token_len,
                        next_tok_start: Some(end + token_start),
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// `_get_last_whitespace_index`: the last ASCII whitespace in `text`, or 0 (sic: index 0 and
/// "none" are the same to the caller).
fn last_whitespace_index(text: &str) -> usize {
    text.rfind([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
        .unwrap_or(0)
}

/// `_match_potential_end_contexts`: each candidate end with the text around it (the word before
/// it, the end itself, and what follows), overlapping candidates merged as nltk does.
fn potential_ends(text: &str) -> Vec<(EndContext, String)> {
    let mut out = Vec::new();
    let mut previous_slice = (0usize, 0usize);
    let mut previous: Option<EndContext> = None;
    let context = |slice: (usize, usize), m: &EndContext| {
        format!(
            "{}{}",
            &text[slice.0..slice.1],
            &text[m.start..m.after_tok_end]
        )
    };
    for m in period_contexts(text) {
        let before = &text[previous_slice.1..m.start];
        let mut index_after_last_space = last_whitespace_index(before);
        if index_after_last_space != 0 {
            index_after_last_space += previous_slice.1 + 1;
        } else {
            index_after_last_space = previous_slice.0;
        }
        let prev_word_slice = (index_after_last_space, m.start);
        if let Some(prev) = previous.take()
            && previous_slice.1 <= prev_word_slice.0
        {
            let ctx = context(previous_slice, &prev);
            out.push((prev, ctx));
        }
        previous = Some(m);
        previous_slice = prev_word_slice;
    }
    if let Some(prev) = previous {
        let ctx = context(previous_slice, &prev);
        out.push((prev, ctx));
    }
    out
}

/// `span_tokenize(text)`: the (start, end) byte spans of the sentences.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let mut slices = Vec::new();
    let mut last_break = 0;
    for (m, context) in potential_ends(text) {
        if contains_sentbreak(&context) {
            slices.push((last_break, m.end));
            last_break = m.next_tok_start.unwrap_or(m.end);
        }
    }
    slices.push((last_break, python::rstrip(text).len()));
    realign_boundaries(text, slices)
}

/// `_realign_boundaries`: closing quotes and brackets after an end go with the sentence before.
fn realign_boundaries(text: &str, slices: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let slice_text =
        |(start, end): (usize, usize)| -> &str { if start < end { &text[start..end] } else { "" } };
    let mut out = Vec::new();
    let mut realign = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        let sentence1 = (start + realign, stop);
        let Some(&sentence2) = slices.get(i + 1) else {
            if !slice_text(sentence1).is_empty() {
                out.push(sentence1);
            }
            continue;
        };
        let following = slice_text(sentence2);
        let matched = patterns()
            .boundary_realignment
            .find(following)
            .ok()
            .flatten()
            .map(|m| m.as_str());
        if let Some(matched) = matched {
            out.push((sentence1.0, sentence2.0 + python::rstrip(matched).len()));
            realign = matched.len();
        } else {
            realign = 0;
            if !slice_text(sentence1).is_empty() {
                out.push(sentence1);
            }
        }
    }
    out
}

/// `PunktSentenceTokenizer.tokenize(text)`.
pub fn sentences(text: &str) -> Vec<&str> {
    sentence_spans(text)
        .into_iter()
        .map(|(s, e)| if s < e { &text[s..e] } else { "" })
        .collect()
}

/// `instructions_util.count_sentences`.
pub fn count_sentences(text: &str) -> usize {
    sentence_spans(text).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_sentences_and_keeps_abbreviations() {
        assert_eq!(
            sentences("Hello world. This is Dr. Smith. He works at the U.S. office."),
            [
                "Hello world.",
                "This is Dr. Smith.",
                "He works at the U.S. office."
            ]
        );
    }

    #[test]
    fn repeated_end_marks_and_closing_quotes_stay_with_their_sentence() {
        assert_eq!(
            sentences("Very bad acting!!! I promise."),
            ["Very bad acting!!!", "I promise."]
        );
        assert_eq!(
            sentences("(How now?) \"Fine.\" Good."),
            ["(How now?)", "\"Fine.\"", "Good."]
        );
    }

    #[test]
    fn lowercase_after_a_period_is_not_a_new_sentence_for_numbers() {
        assert_eq!(count_sentences("It costs 5. dollars are cheap"), 1);
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("   \n "), 0);
        assert_eq!(count_sentences("no end mark"), 1);
    }
}
