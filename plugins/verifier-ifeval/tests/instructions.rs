//! One test per instruction id and per surprising behaviour of the official checker. Every
//! expected (strict, loose) pair was produced by the Python reference (lm-eval 0.4.13's IFEval
//! checker) on the same input; the test names say what they pin.

use verifier_ifeval::check;

fn labels(id: &str, args: &str, response: &str) -> (bool, bool) {
    let result = check(id, args, response).unwrap_or_else(|e| panic!("{id}: {e}"));
    (result.strict, result.loose)
}

macro_rules! pinned {
    ($($name:ident: $id:literal, $args:literal, $response:literal => ($strict:literal, $loose:literal);)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(labels($id, $args, $response), ($strict, $loose));
            }
        )*
    };
}

pinned! {
    existence_keywords_are_regular_expressions: "keywords:existence", "{\"keywords\": [\"colou?r\"]}", "What a lovely color." => (true, true);
    existence_matches_inside_words: "keywords:existence", "{\"keywords\": [\"cat\"]}", "I concatenate strings." => (true, true);
    frequency_counts_substrings_case_insensitively: "keywords:frequency", "{\"keyword\": \"the\", \"frequency\": 3, \"relation\": \"at least\"}", "The theme: other things." => (true, true);
    frequency_less_than_is_strict: "keywords:frequency", "{\"keyword\": \"dog\", \"frequency\": 2, \"relation\": \"less than\"}", "dog dog" => (false, false);
    forbidden_words_match_whole_words_only: "keywords:forbidden_words", "{\"forbidden_words\": [\"cat\"]}", "Concatenation is fine." => (true, true);
    forbidden_words_ignore_case: "keywords:forbidden_words", "{\"forbidden_words\": [\"cat\"]}", "A CAT!" => (false, false);
    letter_frequency_counts_after_lowercasing: "keywords:letter_frequency", "{\"letter\": \"A\", \"let_frequency\": 3, \"let_relation\": \"at least\"}", "Aa a" => (true, true);
    language_of_plain_english: "language:response_language", "{\"language\": \"en\"}", "This is a plain English sentence about the weather today." => (true, true);
    language_without_letters_counts_as_followed: "language:response_language", "{\"language\": \"de\"}", "12345 !!!" => (true, true);
    sentences_abbreviations_do_not_end_sentences: "length_constraints:number_sentences", "{\"num_sentences\": 2, \"relation\": \"less than\"}", "Dr. Smith met Mr. Jones at 5 p.m. today." => (true, true);
    sentences_count_question_marks_and_exclamations: "length_constraints:number_sentences", "{\"num_sentences\": 3, \"relation\": \"at least\"}", "Really? Yes! Fine." => (true, true);
    paragraphs_split_on_three_stars: "length_constraints:number_paragraphs", "{\"num_paragraphs\": 2}", "One.\n***\nTwo." => (true, true);
    paragraphs_an_empty_middle_paragraph_fails: "length_constraints:number_paragraphs", "{\"num_paragraphs\": 2}", "One.\n***\n***\nTwo." => (false, false);
    paragraphs_leading_divider_is_ignored: "length_constraints:number_paragraphs", "{\"num_paragraphs\": 2}", "***\nOne.\n***\nTwo.\n***" => (true, true);
    words_count_runs_of_word_characters: "length_constraints:number_words", "{\"num_words\": 4, \"relation\": \"at least\"}", "don't stop-now" => (true, true);
    nth_paragraph_first_word_strips_quotes_and_punctuation: "length_constraints:nth_paragraph_first_word", "{\"num_paragraphs\": 2, \"nth_paragraph\": 2, \"first_word\": \"hello\"}", "First.\n\n\"Hello, world.\"" => (true, true);
    nth_paragraph_indexes_empty_pieces_but_counts_only_non_empty_ones: "length_constraints:nth_paragraph_first_word", "{\"num_paragraphs\": 2, \"nth_paragraph\": 2, \"first_word\": \"second\"}", "First.\n\n\n\nSecond one." => (false, false);
    nth_paragraph_first_word_stops_at_apostrophe: "length_constraints:nth_paragraph_first_word", "{\"num_paragraphs\": 1, \"nth_paragraph\": 1, \"first_word\": \"it\"}", "It's here." => (true, true);
    placeholders_are_square_brackets: "detectable_content:number_placeholders", "{\"num_placeholders\": 2}", "Dear [name], at [address]." => (true, true);
    placeholders_do_not_span_lines: "detectable_content:number_placeholders", "{\"num_placeholders\": 1}", "[open\nclose]" => (false, false);
    postscript_pps_allows_spaces: "detectable_content:postscript", "{\"postscript_marker\": \"P.P.S\"}", "Body.\n\nP. P. S. more" => (true, true);
    postscript_ps_needs_the_final_period: "detectable_content:postscript", "{\"postscript_marker\": \"P.S.\"}", "Body.\nPS more" => (false, false);
    postscript_may_appear_anywhere: "detectable_content:postscript", "{\"postscript_marker\": \"P.S.\"}", "P.S. first line\nthen the body" => (true, true);
    bullets_count_star_and_dash_lines: "detectable_format:number_bullet_lists", "{\"num_bullets\": 3}", "* one\n* two\n- three" => (true, true);
    bullets_bold_lines_are_not_bullets: "detectable_format:number_bullet_lists", "{\"num_bullets\": 1}", "**Bold**\n* one" => (true, true);
    bullets_a_horizontal_rule_counts_as_a_dash_bullet: "detectable_format:number_bullet_lists", "{\"num_bullets\": 2}", "* one\n---" => (true, true);
    constrained_response_is_a_substring_test: "detectable_format:constrained_response", "{}", "Well. My answer is yes. Really." => (true, true);
    highlights_bold_text_counts_once_not_twice: "detectable_format:number_highlighted_sections", "{\"num_highlights\": 2}", "**bold** only" => (false, false);
    highlights_empty_stars_do_not_count: "detectable_format:number_highlighted_sections", "{\"num_highlights\": 1}", "** ** and * *" => (false, false);
    sections_need_a_number_after_the_splitter: "detectable_format:multiple_sections", "{\"section_spliter\": \"Section\", \"num_sections\": 2}", "Section 1\nA\nSection 2\nB" => (true, true);
    sections_splitter_is_case_sensitive: "detectable_format:multiple_sections", "{\"section_spliter\": \"SECTION\", \"num_sections\": 1}", "Section 1\nA" => (false, false);
    json_fenced_block_passes: "detectable_format:json_format", "{}", "```json\n{\"a\": 1}\n```" => (true, true);
    json_nan_is_accepted_like_python: "detectable_format:json_format", "{}", "[NaN, Infinity]" => (true, true);
    json_text_before_the_fence_fails_strict_but_passes_loose: "detectable_format:json_format", "{}", "Here:\n```json\n{\"a\": 1}\n```" => (false, true);
    title_needs_non_blank_text: "detectable_format:title", "{}", "<<  >> and <<x>>" => (true, true);
    title_may_not_span_lines: "detectable_format:title", "{}", "<<a\nb>>" => (false, false);
    two_responses_must_differ: "combination:two_responses", "{}", "Same\n******\nSame" => (false, false);
    two_responses_separated_by_six_stars: "combination:two_responses", "{}", "One\n******\nTwo" => (true, true);
    repeat_prompt_is_a_case_insensitive_prefix: "combination:repeat_prompt", "{\"prompt_to_repeat\": \"Write a poem.\"}", "  WRITE A POEM. Roses are red." => (true, true);
    end_checker_ignores_surrounding_quotes: "startend:end_checker", "{\"end_phrase\": \"Any other questions?\"}", "\"Done. Any other questions?\"" => (true, true);
    capital_words_split_contractions: "change_case:capital_word_frequency", "{\"capital_frequency\": 3, \"capital_relation\": \"at least\"}", "I DON'T know" => (true, true);
    capital_words_less_than: "change_case:capital_word_frequency", "{\"capital_frequency\": 2, \"capital_relation\": \"less than\"}", "NASA and the ESA" => (false, false);
    english_capital_needs_all_caps_english: "change_case:english_capital", "{}", "THIS IS AN ANSWER WRITTEN IN CAPITAL LETTERS FOR THE TEST." => (true, true);
    english_capital_fails_with_any_lowercase_word: "change_case:english_capital", "{}", "HELLO there" => (false, false);
    english_lowercase_passes_lowercase_english: "change_case:english_lowercase", "{}", "this is a simple answer written in lowercase english words." => (true, true);
    no_comma_any_comma_fails: "punctuation:no_comma", "{}", "a, b" => (false, false);
    no_comma_loose_forgives_a_comma_in_the_first_line: "punctuation:no_comma", "{}", "Sure, here:\nno commas here" => (false, true);
    quotation_wraps_after_stripping: "startend:quotation", "{}", "  \"quoted\"  " => (true, true);
    quotation_single_quote_char_is_not_enough: "startend:quotation", "{}", "\"" => (false, false);
    loose_drops_an_intro_line: "startend:quotation", "{}", "Here it is:\n\"quoted\"" => (false, true);
    loose_removes_markdown_stars: "startend:end_checker", "{\"end_phrase\": \"The end.\"}", "Story. **The end.**" => (false, true);
}

/// Descriptions are the official instruction sentences (taken from the reference's
/// `build_description` for the same arguments).
#[test]
fn descriptions_equal_the_official_sentences() {
    let cases = [
        (
            "keywords:existence",
            r#"{"keywords": ["b", "a"]}"#,
            "Include keywords ['a', 'b'] in the response.",
        ),
        (
            "detectable_format:multiple_sections",
            r#"{"section_spliter": "SECTION", "num_sections": 3}"#,
            "Your response must have 3 sections. Mark the beginning of each section with SECTION X, such as:\nSECTION 1\n[content of section 1]\nSECTION 2\n[content of section 2]",
        ),
        (
            "language:response_language",
            r#"{"language": "sw"}"#,
            "Your ENTIRE response should be in Swahili language, no other language is allowed.",
        ),
        (
            "detectable_format:constrained_response",
            "{}",
            "Answer with one of the following options: ('My answer is yes.', 'My answer is no.', 'My answer is maybe.')",
        ),
        (
            "length_constraints:nth_paragraph_first_word",
            r#"{"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "Bonjour"}"#,
            "There should be 3 paragraphs. Paragraphs and only paragraphs are separated with each other by two new lines as if it was '\\n\\n' in python. Paragraph 2 must start with word bonjour.",
        ),
        (
            "keywords:letter_frequency",
            r#"{"letter": "Q", "let_frequency": 4, "let_relation": "less than"}"#,
            "In your response, the letter q should appear less than 4 times.",
        ),
    ];
    for (id, args, expected) in cases {
        assert_eq!(
            verifier_ifeval::describe(id, args).unwrap(),
            expected,
            "{id}"
        );
    }
}

/// Where the official checker would pick a random argument, this plugin refuses instead.
#[test]
fn missing_or_invalid_arguments_are_errors_not_random_choices() {
    let error = |id: &str, args: &str| check(id, args, "some response").err().unwrap();
    assert_eq!(
        error(
            "length_constraints:number_words",
            r#"{"relation": "at least"}"#
        ),
        "argument `num_words` is required"
    );
    assert_eq!(
        error(
            "length_constraints:number_words",
            r#"{"num_words": "300", "relation": "at least"}"#
        ),
        "argument `num_words` must be an integer, got \"300\""
    );
    assert_eq!(
        error(
            "length_constraints:nth_paragraph_first_word",
            r#"{"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "a"}"#
        ),
        "argument `nth_paragraph` must be between 1 and num_paragraphs (2), got 3"
    );
    assert_eq!(
        error(
            "keywords:letter_frequency",
            r#"{"letter": "ab", "let_frequency": 1, "let_relation": "at least"}"#
        ),
        "argument `letter` must be a single letter, got \"ab\""
    );
    assert_eq!(
        error("nope:nothing", "{}"),
        "unknown instruction id `nope:nothing`"
    );
    assert_eq!(
        error("punctuation:no_comma", r#"{"extra": 1}"#),
        "unknown argument `extra` (this instruction takes: none)"
    );
}

/// The official checker replaces a non-ASCII `letter` with a random ASCII one (IFEval keys 1122
/// and 1129); this plugin counts the letter it was given.
#[test]
fn a_non_ascii_letter_is_counted_as_given() {
    let args = r#"{"letter": "Ñ", "let_frequency": 2, "let_relation": "at least"}"#;
    assert_eq!(
        labels("keywords:letter_frequency", args, "ñandú y Ñoño"),
        (true, true)
    );
    assert_eq!(
        labels("keywords:letter_frequency", args, "nada"),
        (false, false)
    );
}

/// Huge input: a verdict, not a hang (the whole check of a 10 MB response stays linear).
#[test]
fn a_ten_megabyte_response_gets_a_verdict() {
    let response = "All work and no play makes Jack a dull boy. ".repeat(230_000);
    assert!(response.len() > 10_000_000);
    for (id, args, expected) in [
        ("punctuation:no_comma", "{}", (true, true)),
        (
            "length_constraints:number_words",
            r#"{"num_words": 100, "relation": "at least"}"#,
            (true, true),
        ),
        (
            "length_constraints:number_sentences",
            r#"{"num_sentences": 10, "relation": "less than"}"#,
            (false, false),
        ),
        (
            "keywords:forbidden_words",
            r#"{"forbidden_words": ["jill"]}"#,
            (true, true),
        ),
    ] {
        assert_eq!(labels(id, args, &response), expected, "{id}");
    }
}
