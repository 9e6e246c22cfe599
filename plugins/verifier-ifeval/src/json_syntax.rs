//! Whether `json.loads(text)` would succeed in Python: standard JSON plus Python's `NaN`,
//! `Infinity` and `-Infinity`, numbers of any size, no depth limit. Only syntax is checked; nothing
//! is built, so a 10 MB response costs one pass.

pub fn python_json_loads_ok(text: &str) -> bool {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_ws();
    if !parser.value() {
        return false;
    }
    parser.skip_ws();
    parser.pos == parser.bytes.len()
}

struct Parser<'b> {
    bytes: &'b [u8],
    pos: usize,
}

#[derive(Clone, Copy)]
enum Frame {
    Array,
    Object,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str) -> bool {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.literal("Infinity") {
                return true;
            }
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        // Python's scanner takes a fraction or exponent only when complete; otherwise the number
        // ends there and what follows is extra data.
        if self.peek() == Some(b'.') && matches!(self.bytes.get(self.pos + 1), Some(b'0'..=b'9')) {
            self.pos += 1;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.pos = save;
            }
        }
        true
    }

    fn string(&mut self) -> bool {
        self.pos += 1; // opening quote
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return true,
                b'\\' => match self.peek() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
                    Some(b'u') => {
                        let hex = self.bytes.get(self.pos + 1..self.pos + 5);
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return false;
                        }
                        self.pos += 5;
                    }
                    _ => return false,
                },
                0x00..=0x1f => return false,
                _ => {}
            }
        }
        false
    }

    fn scalar(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'n') => self.literal("null"),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'N') => self.literal("NaN"),
            Some(b'I') => self.literal("Infinity"),
            _ => false,
        }
    }

    /// One value, iteratively so that nesting depth costs no stack.
    fn value(&mut self) -> bool {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // Expect a value here.
            self.skip_ws();
            match self.peek() {
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(Frame::Array);
                        continue;
                    }
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        if !self.object_key() {
                            return false;
                        }
                        stack.push(Frame::Object);
                        continue;
                    }
                }
                _ => {
                    if !self.scalar() {
                        return false;
                    }
                }
            }
            // After a value: close containers or move to the next element.
            loop {
                let Some(&frame) = stack.last() else {
                    return true;
                };
                self.skip_ws();
                match (frame, self.peek()) {
                    (Frame::Array, Some(b',')) => {
                        self.pos += 1;
                        break;
                    }
                    (Frame::Object, Some(b',')) => {
                        self.pos += 1;
                        self.skip_ws();
                        if !self.object_key() {
                            return false;
                        }
                        break;
                    }
                    (Frame::Array, Some(b']')) | (Frame::Object, Some(b'}')) => {
                        self.pos += 1;
                        stack.pop();
                    }
                    _ => return false,
                }
            }
        }
    }

    /// `"key" :` inside an object.
    fn object_key(&mut self) -> bool {
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.skip_ws();
        if self.peek() != Some(b':') {
            return false;
        }
        self.pos += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::python_json_loads_ok as ok;

    #[test]
    fn accepts_what_python_accepts() {
        for text in [
            "{}",
            "[]",
            "3",
            "\"s\"",
            " {\"a\": [1, 2.5e3, -0, null, true]} ",
            "NaN",
            "[-Infinity, Infinity]",
            "1e400",
            "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
            "\"\\ud800\"",
        ] {
            assert!(ok(text), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(ok(&deep));
    }

    #[test]
    fn rejects_what_python_rejects() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "{'a': 1}",
            "nan",
            "\"a\tb\"",
            "[1] [2]",
            "{\"a\" 1}",
            "tru",
            "\"\\x\"",
            "- 1",
        ] {
            assert!(!ok(text), "{text:?}");
        }
    }
}
