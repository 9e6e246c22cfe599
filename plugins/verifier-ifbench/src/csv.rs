//! Python's `csv.reader(io.StringIO(text), delimiter=d)` with the default (excel) dialect: the
//! same state machine as CPython's `_csv.c`, so that rows and fields come out the same, empty lines
//! as empty rows included.

#[derive(Clone, Copy, PartialEq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuotedField,
    QuoteInQuotedField,
    EatCrnl,
}

/// What the state machine reads: a character, a line break character, or the end of a line.
#[derive(Clone, Copy, PartialEq)]
enum Input {
    Char(char),
    Newline(char),
    EndOfLine,
}

/// One input outside quotes: a line break or the end of the line ends the record, a delimiter
/// the field, anything else is part of the field.
fn unquoted(input: Input, delimiter: char, fields: &mut Vec<String>, field: &mut String) -> State {
    match input {
        Input::EndOfLine | Input::Newline(_) => {
            fields.push(std::mem::take(field));
            if input == Input::EndOfLine {
                State::StartRecord
            } else {
                State::EatCrnl
            }
        }
        Input::Char(c) if c == delimiter => {
            fields.push(std::mem::take(field));
            State::StartField
        }
        Input::Char(c) => {
            field.push(c);
            State::InField
        }
    }
}

/// The rows, or `None` where Python raises `csv.Error` (a `\r` inside an unquoted line).
pub fn read(text: &str, delimiter: char) -> Option<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut state = State::StartRecord;
    // `io.StringIO` yields lines split after each `\n` only.
    for line in text.split_inclusive('\n') {
        let inputs = line
            .chars()
            .map(|c| match c {
                '\n' | '\r' => Input::Newline(c),
                c => Input::Char(c),
            })
            .chain(std::iter::once(Input::EndOfLine));
        for input in inputs {
            state = match (state, input) {
                (State::StartRecord, Input::EndOfLine) => State::StartRecord,
                (State::StartRecord, Input::Newline(_)) => State::EatCrnl,
                (State::StartRecord | State::StartField, Input::Char('"')) => State::InQuotedField,
                (State::StartRecord | State::StartField | State::InField, input) => {
                    unquoted(input, delimiter, &mut fields, &mut field)
                }
                (State::InQuotedField, Input::EndOfLine) => State::InQuotedField,
                (State::InQuotedField, Input::Char('"')) => State::QuoteInQuotedField,
                (State::InQuotedField, Input::Char(c)) => {
                    field.push(c);
                    State::InQuotedField
                }
                // A line break inside quotes is part of the field.
                (State::InQuotedField, Input::Newline(c)) => {
                    field.push(c);
                    State::InQuotedField
                }
                (State::QuoteInQuotedField, Input::Char('"')) => {
                    field.push('"');
                    State::InQuotedField
                }
                // Not strict: text after a closing quote joins the field, unquoted.
                (State::QuoteInQuotedField, input) => {
                    unquoted(input, delimiter, &mut fields, &mut field)
                }
                (State::EatCrnl, Input::Newline(_)) => State::EatCrnl,
                (State::EatCrnl, Input::EndOfLine) => State::StartRecord,
                (State::EatCrnl, Input::Char(_)) => return None,
            };
        }
        if state == State::StartRecord {
            rows.push(std::mem::take(&mut fields));
        }
    }
    // End of input inside a record: the field so far is saved (not strict).
    if !field.is_empty() || state == State::InQuotedField {
        fields.push(field);
        rows.push(fields);
    }
    Some(rows)
}

#[cfg(test)]
mod tests {
    use super::read;

    fn rows(text: &str) -> Vec<Vec<String>> {
        read(text, ',').unwrap()
    }

    #[test]
    fn fields_quotes_and_empty_lines_as_python() {
        assert_eq!(rows("a,b\n\nc"), vec![vec!["a", "b"], vec![], vec!["c"]]);
        assert_eq!(
            rows("\"x, y\",\"say \"\"hi\"\"\"\n"),
            vec![vec!["x, y", "say \"hi\""]]
        );
        // Text after a closing quote joins the field; a quoted field may span lines.
        assert_eq!(rows("\"a\"b,c"), vec![vec!["ab", "c"]]);
        assert_eq!(rows("\"a\nb\",c\n"), vec![vec!["a\nb", "c"]]);
        assert_eq!(rows("a,\r\nb"), vec![vec!["a", ""], vec!["b"]]);
        // An unterminated quote keeps what it has.
        assert_eq!(rows("\"abc"), vec![vec!["abc"]]);
        assert_eq!(rows(""), Vec::<Vec<String>>::new());
    }

    #[test]
    fn a_carriage_return_inside_a_line_is_an_error() {
        assert!(read("a\rb\n", ',').is_none());
    }
}
