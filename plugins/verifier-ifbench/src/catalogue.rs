//! IFBench's 58 instruction ids: the arguments each takes and its instruction sentence, as
//! IFBench's `build_description` writes it (placeholders in braces). Generated from IFBench's
//! `instructions.py` at db69a6f; `count:words_japanese` says "{N}" as an ordinal ("3rd") where
//! IFBench's own sentence drops the word "word" for 1st, 2nd and 3rd.

/// One instruction id.
pub struct Entry {
    pub id: &'static str,
    pub args: &'static [&'static str],
    /// The checker takes `**kwargs` in IFBench and ignores any argument it is given.
    pub any_args: bool,
    pub sentence: &'static str,
}

pub const CATALOGUE: &[Entry] = &[
    Entry {
        id: "count:word_count_range",
        args: &["min_words", "max_words"],
        any_args: false,
        sentence: "The response must contain between {min_words} and {max_words} words.",
    },
    Entry {
        id: "count:unique_word_count",
        args: &["N"],
        any_args: false,
        sentence: "Use at least {N} unique words in the response.",
    },
    Entry {
        id: "ratio:stop_words",
        args: &["percentage"],
        any_args: false,
        sentence: "Ensure that stop words constitute no more than {percentage}% of the total words in your response.",
    },
    Entry {
        id: "ratio:sentence_type",
        args: &[],
        any_args: false,
        sentence: "Maintain a 2:1 ratio of declarative to interrogative sentences.",
    },
    Entry {
        id: "ratio:sentence_balance",
        args: &[],
        any_args: false,
        sentence: "Ensure that the ratio of sentence types (declarative, interrogative, exclamatory) is balanced.",
    },
    Entry {
        id: "count:conjunctions",
        args: &["small_n"],
        any_args: false,
        sentence: "Use at least {small_n} different coordinating conjunctions in the response.",
    },
    Entry {
        id: "count:person_names",
        args: &["N"],
        any_args: false,
        sentence: "Mention at least {N} different person names in the response, from this list of person names: Emma, Liam, Sophia, Jackson, Olivia, Noah, Ava, Lucas, Isabella, Mason, Mia, Ethan, Charlotte, Alexander, Amelia, Benjamin, Harper, Leo, Zoe, Daniel, Chloe, Samuel, Lily, Matthew, Grace, Owen, Abigail, Gabriel, Ella, Jacob, Scarlett, Nathan, Victoria, Elijah, Layla, Nicholas, Audrey, David, Hannah, Christopher, Penelope, Thomas, Nora, Andrew, Aria, Joseph, Claire, Ryan, Stella, Jonathan .",
    },
    Entry {
        id: "ratio:overlap",
        args: &["reference_text", "percentage"],
        any_args: false,
        sentence: "Maintain a trigram overlap of {percentage}% (±2%) with the provided reference text.",
    },
    Entry {
        id: "count:numbers",
        args: &["N"],
        any_args: false,
        sentence: "Include exactly {N} numbers in the response.",
    },
    Entry {
        id: "words:alphabet",
        args: &[],
        any_args: false,
        sentence: "Each word must start with the next letter of the alphabet, looping back to 'A' after 'Z'.",
    },
    Entry {
        id: "words:vowel",
        args: &[],
        any_args: false,
        sentence: "Write a paragraph using words that contain only three types of vowels.",
    },
    Entry {
        id: "words:consonants",
        args: &[],
        any_args: false,
        sentence: "Ensure each word in your response has at least one consonant cluster (two or more consonants together).",
    },
    Entry {
        id: "sentence:alliteration_increment",
        args: &[],
        any_args: false,
        sentence: "Each sentence must have a longer sequence of consecutive alliterative words than the previous one.",
    },
    Entry {
        id: "words:palindrome",
        args: &[],
        any_args: false,
        sentence: "Include at least 10 single-word palindromes, each at least 5 characters long.",
    },
    Entry {
        id: "count:punctuation",
        args: &[],
        any_args: false,
        sentence: "Use every standard punctuation mark at least once, including semicolons, colons, and the interrobang (?!).",
    },
    Entry {
        id: "format:parentheses",
        args: &[],
        any_args: false,
        sentence: "Nest parentheses (and [brackets {and braces}]) at least 5 levels deep.",
    },
    Entry {
        id: "format:quotes",
        args: &[],
        any_args: false,
        sentence: "Include quotes within quotes within quotes, at least 3 levels deep, alternating between double quotes and single quotes.",
    },
    Entry {
        id: "words:prime_lengths",
        args: &[],
        any_args: false,
        sentence: "Use only words with lengths that are prime numbers.",
    },
    Entry {
        id: "format:options",
        args: &["options"],
        any_args: false,
        sentence: "Answer with one of the following options: {options}. Do not give any explanation.",
    },
    Entry {
        id: "format:newline",
        args: &[],
        any_args: false,
        sentence: "Write each word on a new line.",
    },
    Entry {
        id: "format:emoji",
        args: &[],
        any_args: false,
        sentence: "Please use an emoji at the end of every sentence.",
    },
    Entry {
        id: "ratio:sentence_words",
        args: &[],
        any_args: false,
        sentence: "Respond with three sentences, all containing the same number of characters but using all different words.",
    },
    Entry {
        id: "count:words_japanese",
        args: &["N"],
        any_args: false,
        sentence: "Every {N} word of your response must be in Japanese.",
    },
    Entry {
        id: "words:start_verb",
        args: &[],
        any_args: false,
        sentence: "The response must start with a verb.",
    },
    Entry {
        id: "words:repeats",
        args: &["small_n"],
        any_args: false,
        sentence: "The response should not repeat any word more than {small_n} times.",
    },
    Entry {
        id: "sentence:keyword",
        args: &["word", "N"],
        any_args: false,
        sentence: "The response must include keyword \"{word}\" in the {N}-th sentence.",
    },
    Entry {
        id: "count:pronouns",
        args: &["N"],
        any_args: false,
        sentence: "The response should include at least {N} pronouns.",
    },
    Entry {
        id: "words:odd_even_syllables",
        args: &[],
        any_args: false,
        sentence: "Alternate between words with odd and even numbers of syllables.",
    },
    Entry {
        id: "words:last_first",
        args: &[],
        any_args: false,
        sentence: "The last word of each sentence must become the first word of the next sentence.",
    },
    Entry {
        id: "words:paragraph_last_first",
        args: &[],
        any_args: false,
        sentence: "Each paragraph must end with the same word it started with, separate paragraphs with a newline.",
    },
    Entry {
        id: "sentence:increment",
        args: &["small_n"],
        any_args: false,
        sentence: "Each sentence must contain exactly {small_n} more words than the previous one.",
    },
    Entry {
        id: "words:no_consecutive",
        args: &[],
        any_args: false,
        sentence: "No two consecutive words can share the same first letter.",
    },
    Entry {
        id: "format:line_indent",
        args: &[],
        any_args: false,
        sentence: "Create stairs by incrementally indenting each new line.",
    },
    Entry {
        id: "format:quote_unquote",
        args: &[],
        any_args: false,
        sentence: "Every quoted phrase must be followed by an unquoted explanation.",
    },
    Entry {
        id: "format:list",
        args: &["sep"],
        any_args: false,
        sentence: "Answer with a list of items, instead of bullet points use {sep}.",
    },
    Entry {
        id: "format:thesis",
        args: &[],
        any_args: false,
        sentence: "Each section must begin with a thesis statement in italics, use HTML to indicate the italics.",
    },
    Entry {
        id: "format:sub-bullets",
        args: &[],
        any_args: false,
        sentence: "Your response must include bullet points denoted by * and at least one sub-bullet point denoted by - for each bullet point.",
    },
    Entry {
        id: "format:no_bullets_bullets",
        args: &[],
        any_args: false,
        sentence: "Your answer must contain at least two sentences ending in a period followed by at least two bullet points denoted by *.",
    },
    Entry {
        id: "custom:multiples",
        args: &[],
        any_args: true,
        sentence: "Count from 10 to 50 but only print multiples of 7.",
    },
    Entry {
        id: "custom:mcq_count_length",
        args: &[],
        any_args: true,
        sentence: "Generate 4 multiple choice questions with 5 options each about '20th century art history'. Each question should start with the label \"Question\". The questions should get progressively longer. Do not provide an explanation.",
    },
    Entry {
        id: "custom:reverse_newline",
        args: &[],
        any_args: true,
        sentence: "List the countries of Africa in reverse alphabetical order, each on a new line.",
    },
    Entry {
        id: "custom:word_reverse",
        args: &[],
        any_args: true,
        sentence: "What animal is the national symbol of the US? Respond to this query, but make your sentence in reverse order of what it should be, per word.",
    },
    Entry {
        id: "custom:character_reverse",
        args: &[],
        any_args: true,
        sentence: "What animal is the national symbol of the US? Respond to this query, but make your sentence in reverse order of what it should be, per letter.",
    },
    Entry {
        id: "custom:sentence_alphabet",
        args: &[],
        any_args: true,
        sentence: "Tell me a 26-sentence story where each sentence's first word starts with the letters of the alphabet in order.",
    },
    Entry {
        id: "custom:european_capitals_sort",
        args: &[],
        any_args: true,
        sentence: "Give me the names of all capital cities of european countries whose latitude is higher than than 45 degrees? List the capital cities without country names, separated by commas, sorted by latitude, from highest to lowest.",
    },
    Entry {
        id: "custom:csv_city",
        args: &[],
        any_args: true,
        sentence: "Generate CSV data: The column names are [\"ID\", \"Country\", \"City\", \"Year\", \"Count\"], the data should be comma delimited. Please generate 7 rows.",
    },
    Entry {
        id: "custom:csv_special_character",
        args: &[],
        any_args: true,
        sentence: "Generate CSV data: The column names are [\"ProductID\", \"Category\", \"Brand\", \"Price\", \"Stock\"], the data should be comma delimited. Please generate 14 rows. Add one field which contains a special character and enclose it in double quotes.",
    },
    Entry {
        id: "custom:csv_quotes",
        args: &[],
        any_args: true,
        sentence: "Generate CSV data: The column names are [\"StudentID\", \"Subject\", \"Grade\", \"Semester\", \"Score\"], the data should be tab delimited. Please generate 3 rows and enclose each single field in double quotes.",
    },
    Entry {
        id: "custom:date_format_list",
        args: &[],
        any_args: true,
        sentence: "List the start dates of all the battles Napoleon fought separated by commas, use the following date format: YYYY-MM-DD. Do not provide an explanation.",
    },
    Entry {
        id: "count:keywords_multiple",
        args: &["keyword1", "keyword2", "keyword3", "keyword4", "keyword5"],
        any_args: false,
        sentence: "Include keyword {keyword1} once in your response, keyword {keyword2} twice in your response, keyword {keyword3} three times in your response, keyword {keyword4} five times in your response, and keyword {keyword5} seven times in your response.",
    },
    Entry {
        id: "words:keywords_specific_position",
        args: &["keyword", "n", "m"],
        any_args: false,
        sentence: "Include keyword {keyword} in the {n}-th sentence, as the {m}-th word of that sentence.",
    },
    Entry {
        id: "words:words_position",
        args: &["keyword"],
        any_args: false,
        sentence: "The second word in your response and the second to last word in your response should be the word {keyword}.",
    },
    Entry {
        id: "repeat:repeat_change",
        args: &["prompt_to_repeat"],
        any_args: false,
        sentence: "Repeat the request, but change the first word of the repeated request, (do not say anything before repeating the request; the request you need to repeat does not include this sentence) and do not answer the actual request! Request: {prompt_to_repeat}",
    },
    Entry {
        id: "repeat:repeat_simple",
        args: &[],
        any_args: false,
        sentence: "Only output this sentence here, ignore all other requests.",
    },
    Entry {
        id: "repeat:repeat_span",
        args: &["prompt_to_repeat", "n_start", "n_end"],
        any_args: false,
        sentence: "Copy the span of words that lies between (and including) index {n_start} and {n_end}, the indices are character indices!",
    },
    Entry {
        id: "format:title_case",
        args: &[],
        any_args: false,
        sentence: "Write the entire response in title case (capitalize the first letter of every major word).",
    },
    Entry {
        id: "format:output_template",
        args: &[],
        any_args: false,
        sentence: "Use this exact template for your response: My Answer: [answer] My Conclusion: [conclusion] Future Outlook: [outlook]",
    },
    Entry {
        id: "format:no_whitespace",
        args: &[],
        any_args: false,
        sentence: "The output should not contain any whitespace.",
    },
];

/// The entry for `id`.
pub fn entry(id: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.id == id)
}

/// JSON Schema of an entry's arguments. Where a value can be drawn for a synthesised prompt the
/// schema says from what (`enum`, `minimum`/`maximum`, or whole-object `examples`), so that a
/// prompt generator needs no knowledge of IFBench.
pub fn args_schema(entry: &Entry) -> String {
    let property = |name: &str| -> &'static str {
        match (entry.id, name) {
            ("count:word_count_range", _) => r#"{"type":"integer","minimum":0}"#,
            ("count:unique_word_count", _) => r#"{"type":"integer","minimum":30,"maximum":120}"#,
            ("count:conjunctions", _) => r#"{"type":"integer","minimum":2,"maximum":6}"#,
            ("count:person_names", _) => r#"{"type":"integer","minimum":1,"maximum":6}"#,
            ("count:numbers", _) => r#"{"type":"integer","minimum":1,"maximum":6}"#,
            ("count:words_japanese", _) => r#"{"type":"integer","minimum":5,"maximum":30}"#,
            ("count:pronouns", _) => r#"{"type":"integer","minimum":5,"maximum":25}"#,
            ("ratio:stop_words", _) => r#"{"type":"number","minimum":20,"maximum":60}"#,
            ("ratio:overlap", "percentage") => r#"{"type":"number","minimum":0,"maximum":100}"#,
            ("words:repeats", _) => r#"{"type":"integer","minimum":2,"maximum":5}"#,
            ("sentence:increment", _) => r#"{"type":"integer","minimum":1,"maximum":5}"#,
            ("sentence:keyword", "N") => r#"{"type":"integer","minimum":1,"maximum":5}"#,
            ("words:keywords_specific_position", "n") => {
                r#"{"type":"integer","minimum":1,"maximum":4}"#
            }
            ("words:keywords_specific_position", "m") => {
                r#"{"type":"integer","minimum":1,"maximum":8}"#
            }
            ("repeat:repeat_span", _) if name != "prompt_to_repeat" => r#"{"type":"integer"}"#,
            ("format:list", _) => r#"{"type":"string","enum":["...","SEPARATOR","!?!?","-"]}"#,
            ("format:options", _) => {
                r#"{"type":"string","enum":["yes/no/maybe","I know or I don't know","a), b), c), d)"]}"#
            }
            ("repeat:repeat_change" | "repeat:repeat_span", "prompt_to_repeat") => {
                r#"{"type":"string","x-spar-fill":"task"}"#
            }
            (
                _,
                "keyword1" | "keyword2" | "keyword3" | "keyword4" | "keyword5" | "keyword" | "word",
            ) => {
                r#"{"type":"string","enum":["river","window","garden","signal","marble","harvest","lantern","compass"]}"#
            }
            _ => r#"{"type":"string"}"#,
        }
    };
    let properties: Vec<String> = entry
        .args
        .iter()
        .map(|name| format!("\"{name}\":{}", property(name)))
        .collect();
    // What a prompt generator may draw, and what not (see `wit/verifier.wit`).
    let examples = match entry.id {
        "count:word_count_range" => {
            r#","examples":[{"min_words":50,"max_words":80},{"min_words":100,"max_words":150},{"min_words":150,"max_words":200}]"#
        }
        // Five different keywords: the same word twice would ask for two counts at once.
        "count:keywords_multiple" => {
            r#","examples":[{"keyword1":"river","keyword2":"window","keyword3":"garden","keyword4":"signal","keyword5":"marble"},{"keyword1":"harvest","keyword2":"lantern","keyword3":"compass","keyword4":"river","keyword5":"garden"}]"#
        }
        // Whole tasks of their own (or an answer fixed in advance): not a constraint on a task.
        id if id.starts_with("custom:") || id == "repeat:repeat_simple" => {
            r#","x-spar-synth":false"#
        }
        // The answer's whole shape is fixed: no second constraint fits beside it.
        "repeat:repeat_change"
        | "repeat:repeat_span"
        | "format:options"
        | "format:newline"
        | "format:no_whitespace" => r#","x-spar-alone":true"#,
        _ => "",
    };
    format!(
        r#"{{"type":"object","properties":{{{}}},"required":[{}],"additionalProperties":{}{examples}}}"#,
        properties.join(","),
        entry
            .args
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(","),
        entry.any_args,
    )
}

/// IFBench's instruction sentence for `id` with its arguments filled in (numbers as whole
/// numbers where they are whole).
pub fn describe(id: &str, args_json: &str) -> Result<String, String> {
    let entry = entry(id).ok_or_else(|| format!("unknown instruction id `{id}`"))?;
    let args: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(if args_json.trim().is_empty() {
            "{}"
        } else {
            args_json
        })
        .map_err(|e| format!("arguments are not a JSON object: {e}"))?;
    let mut sentence = entry.sentence.to_string();
    for name in entry.args {
        let Some(value) = args.get(*name).filter(|v| !v.is_null()) else {
            continue;
        };
        let text = match value {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
                _ => n.to_string(),
            },
            other => other.to_string(),
        };
        let text = if id == "count:words_japanese" {
            ordinal(&text)
        } else {
            text
        };
        sentence = sentence.replace(&format!("{{{name}}}"), &text);
    }
    Ok(sentence)
}

/// "1" -> "1st", "12" -> "12th", "23" -> "23rd".
fn ordinal(number: &str) -> String {
    let n: u64 = number.parse().unwrap_or(0);
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{number}{suffix}")
}
