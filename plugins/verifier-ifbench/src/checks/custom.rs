//! `custom:*`: the eleven instructions that are whole tasks of their own (multiples of 7, quiz
//! questions, African countries, reversed answers, an alphabet story, European capitals, three CSV
//! tables and Napoleon's battle dates).

use nltk_text::python;

use super::Check;
use crate::csv;
use crate::text::{
    ascii_folded, decimal_runs, sentences, split, strip_punctuation, without_punctuation,
};

pub fn build(name: &str) -> Result<Check, String> {
    Ok(match name {
        "multiples" => Box::new(|v| {
            let spaced = v.replace(',', ", ");
            decimal_runs(&spaced) == ["14", "21", "28", "35", "42", "49"]
        }),
        "mcq_count_length" => Box::new(|v| quiz(v).unwrap_or(false)),
        "reverse_newline" => Box::new(african_countries_reversed),
        "word_reverse" => Box::new(|v| {
            let cleaned = without_punctuation(python::strip(&python::lower(v)));
            let reversed: Vec<&str> = split(&cleaned).into_iter().rev().collect();
            let reversed = reversed.join(" ");
            reversed.contains("bald eagle") && sentences(&reversed).contains(&reversed.as_str())
        }),
        "character_reverse" => Box::new(|v| python::lower(v).contains("elgae dlab")),
        "sentence_alphabet" => Box::new(|v| {
            let sentences = sentences(v);
            sentences.len() == 26
                && sentences.iter().zip('a'..='z').all(|(s, letter)| {
                    split(s)
                        .first()
                        .is_some_and(|w| python::lower(w).starts_with(letter))
                })
        }),
        "european_capitals_sort" => Box::new(|v| {
            const ORDER: [&str; 27] = [
                "Reykjavik",
                "Helsinki",
                "Oslo",
                "Tallinn",
                "Stockholm",
                "Riga",
                "Moscow",
                "Copenhagen",
                "Vilnius",
                "Minsk",
                "Dublin",
                "Berlin",
                "Amsterdam",
                "Warsaw",
                "London",
                "Brussels",
                "Prague",
                "Luxembourg",
                "Paris",
                "Vienna",
                "Bratislava",
                "Budapest",
                "Vaduz",
                "Chisinau",
                "Bern",
                "Ljubljana",
                "Zagreb",
            ];
            let folded = ascii_folded(v);
            let capitals: Vec<&str> = folded
                .split(',')
                .filter(|c| !python::strip(c).is_empty())
                .collect();
            capitals.len() == ORDER.len()
                && capitals
                    .iter()
                    .zip(ORDER)
                    .all(|(c, o)| python::strip(c) == o)
        }),
        "csv_city" => Box::new(|v| {
            // A `\r` inside a line makes Python's reader raise; that is no table.
            let Some(rows) = csv::read(v, ',') else {
                return false;
            };
            rows.len() == 8
                && rows[0] == ["ID", "Country", "City", "Year", "Count"]
                && rows[1..].iter().all(|r| r.len() == 5)
        }),
        "csv_special_character" => Box::new(csv_special_character),
        "csv_quotes" => Box::new(csv_quotes),
        "date_format_list" => Box::new(napoleon_dates),
        _ => unreachable!("catalogue id custom:{name}"),
    })
}

/// `MultipleChoiceQuestionsChecker`: nothing before the first "Question", four questions of five
/// options each, each question's text longer than the one before. `None` where a regex fails.
fn quiz(v: &str) -> Option<bool> {
    // `value[value.find('Question'):]`: not found (-1) keeps only the last character.
    let from = match v.find("Question") {
        Some(i) => i,
        None => v.char_indices().last().map_or(0, |(i, _)| i),
    };
    if &v[from..] != v {
        return Some(false);
    }
    let splitter = python::compile(r"\n*(?:Question \d+[\.|\):;]?\s*)", false, false).ok()?;
    let option = python::compile(r"^[A-Ea-e][\.|\)]\s*\w+", false, false).ok()?;
    let mut pieces = python::split(&splitter, v);
    if pieces.first() == Some(&"") {
        pieces.remove(0);
    }
    let questions: Vec<&str> = pieces
        .iter()
        .map(|q| python::strip(q))
        .filter(|q| !q.is_empty())
        .collect();
    if questions.len() != 4 {
        return Some(false);
    }
    let mut lengths = Vec::new();
    for question in questions {
        let mut text = String::new();
        let (mut options, mut in_options) = (0, false);
        for line in question.split('\n') {
            let line = python::strip(line);
            if python::is_match(&option, line) {
                options += 1;
                in_options = true;
            } else if !in_options {
                text.push(' ');
                text.push_str(line);
            }
        }
        if options != 5 {
            return Some(false);
        }
        lengths.push(python::strip(&text).chars().count());
    }
    Some(lengths.windows(2).all(|p| p[0] < p[1]))
}

/// `ReverseNewlineChecker`: from the line naming Zimbabwe on, at least 52 lines in reverse
/// alphabetical order (accents folded away).
fn african_countries_reversed(v: &str) -> bool {
    let lines: Vec<&str> = v
        .split('\n')
        .map(strip_punctuation)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(start) = lines.iter().position(|l| l.contains("Zimbabwe")) else {
        return false;
    };
    let folded: Vec<String> = lines[start..].iter().map(|l| ascii_folded(l)).collect();
    folded.len() >= 52 && folded.windows(2).all(|p| p[0] >= p[1])
}

/// The first line, stripped, matches `header` (`re.match`), and the table reads with every `"`
/// tripled first, as IFBench does; `None` where either fails.
fn quoted_table(v: &str, header: &str, delimiter: char) -> Option<Vec<Vec<String>>> {
    let header = python::compile(header, false, false).ok()?;
    if !python::is_match(&header, python::strip(v.split('\n').next().unwrap_or(""))) {
        return None;
    }
    csv::read(&v.replace('"', "\"\"\""), delimiter)
}

/// `SpecialCharacterCSVChecker`: the header, 14 rows of 5 fields, one a quoted field with a
/// special character.
fn csv_special_character(v: &str) -> bool {
    const HEADER: &str = r#"^(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),[ \t]*(Price|"Price"),[ \t]*(Stock|"Stock")$"#;
    let (Some(rows), Ok(special)) = (
        quoted_table(v, HEADER, ','),
        python::compile(r#"^".*[^\d\w\s].*""#, false, false),
    ) else {
        return false;
    };
    if rows.len() != 15 {
        return false;
    }
    for row in &rows[1..] {
        if row.len() != 5 {
            return false;
        }
        if row.iter().any(|field| python::is_match(&special, field)) {
            return true;
        }
    }
    false
}

/// `QuotesCSVChecker`: the tab-separated header, 3 rows, every field in double quotes.
fn csv_quotes(v: &str) -> bool {
    const HEADER: &str = r#"^(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")\t *(Semester|"Semester")\t *(Score|"Score")$"#;
    let Some(rows) = quoted_table(v, HEADER, '\t') else {
        return false;
    };
    // A field that is blank once stripped makes IFBench's `field.strip()[0]` raise: not a pass.
    rows.len() == 4
        && rows.iter().all(|row| {
            row.len() == 5
                && row.iter().all(|field| {
                    let f = python::strip(field);
                    !f.is_empty() && f.starts_with('"') && f.ends_with('"')
                })
        })
}

/// `DateFormatListChecker`: comma-separated YYYY-MM-DD dates between 1769 and 1821 whose month
/// and day could exist.
fn napoleon_dates(v: &str) -> bool {
    let Ok(shape) = python::compile(r"^\d{4}-\d{2}-\d{2}$", false, false) else {
        return false;
    };
    python::strip(v).split(',').all(|date| {
        let date = python::strip(date);
        if !python::is_match(&shape, date) {
            return false;
        }
        let parts: Vec<u32> = date.split('-').map(decimal_value).collect();
        let (year, month, day) = (parts[0], parts[1], parts[2]);
        let longest = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 => 29,
            _ => u32::MAX,
        };
        (1769..=1821).contains(&year) && month <= 12 && day <= longest
    })
}

/// `int(s)` of a run of decimal digits of any script.
fn decimal_value(s: &str) -> u32 {
    s.chars()
        .fold(0, |n, c| n * 10 + python::decimal_digit(c).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    fn check(name: &str, v: &str) -> bool {
        crate::checks::follows(&format!("custom:{name}"), "{}", v)
    }

    #[test]
    fn multiples_of_seven_from_ten_to_fifty() {
        assert!(check("multiples", "14, 21, 28, 35, 42, 49"));
        assert!(!check("multiples", "7, 14, 21, 28, 35, 42, 49"));
    }

    #[test]
    fn napoleon_dates_must_be_plausible() {
        assert!(check("date_format_list", "1796-04-12, 1805-12-02"));
        assert!(!check("date_format_list", "1796-04-31"));
        assert!(!check("date_format_list", "1796-4-12"));
        assert!(check("date_format_list", "1800-00-00"));
    }

    #[test]
    fn csv_city_needs_the_header_and_seven_rows() {
        let mut table = String::from("ID,Country,City,Year,Count\n");
        for i in 0..7 {
            table.push_str(&format!("{i},France,Paris,2020,{i}\n"));
        }
        assert!(check("csv_city", &table));
        assert!(!check("csv_city", &format!("{table}\n")));
    }

    #[test]
    fn word_reverse_wants_one_reversed_sentence() {
        assert!(check("word_reverse", "eagle bald the is It"));
        assert!(!check("word_reverse", "The bald eagle."));
    }

    #[test]
    fn quiz_questions_grow_longer() {
        let q = |n: usize, text: &str| {
            format!("Question {n}: {text}\nA. one\nB. two\nC. three\nD. four\nE. five\n")
        };
        let quiz = [
            q(1, "Who?"),
            q(2, "Who is?"),
            q(3, "Who is it?"),
            q(4, "Who is it now?"),
        ]
        .concat();
        assert!(check("mcq_count_length", &quiz));
        assert!(!check("mcq_count_length", &format!("Here you go.\n{quiz}")));
    }
}
