//! Instruction arguments: a JSON object, read the way the official checker reads kwargs (falsy
//! values count as absent), with an error naming the argument for anything missing or mistyped.

use serde_json::{Map, Value};

/// `less than` or `at least`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    LessThan,
    AtLeast,
}

impl Relation {
    pub fn holds(self, actual: usize, threshold: i64) -> bool {
        let actual = actual as i64;
        match self {
            Relation::LessThan => actual < threshold,
            Relation::AtLeast => actual >= threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::LessThan => "less than",
            Relation::AtLeast => "at least",
        }
    }
}

/// The arguments of one instruction.
pub struct Args {
    values: Map<String, Value>,
}

fn is_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

impl Args {
    /// Parse `json` and check that every present argument is one of `allowed`.
    pub fn parse(json: &str, allowed: &[&str]) -> Result<Args, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("arguments are not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err(format!("arguments must be a JSON object, got {value}"));
        };
        // As the official checker: `{k: v for k, v in kwargs.items() if v}`.
        let values: Map<String, Value> = map.into_iter().filter(|(_, v)| !is_falsy(v)).collect();
        if let Some(unknown) = values.keys().find(|k| !allowed.contains(&k.as_str())) {
            let expected = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(format!(
                "unknown argument `{unknown}` (this instruction takes: {expected})"
            ));
        }
        Ok(Args { values })
    }

    fn required(&self, name: &str) -> Result<&Value, String> {
        self.values
            .get(name)
            .ok_or_else(|| format!("argument `{name}` is required"))
    }

    pub fn int(&self, name: &str) -> Result<i64, String> {
        let value = self.required(name)?;
        value
            .as_i64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("argument `{name}` must be an integer, got {value}"))
    }

    pub fn string(&self, name: &str) -> Result<&str, String> {
        let value = self.required(name)?;
        value
            .as_str()
            .ok_or_else(|| format!("argument `{name}` must be a string, got {value}"))
    }

    pub fn string_list(&self, name: &str) -> Result<Vec<String>, String> {
        let value = self.required(name)?;
        let error = || format!("argument `{name}` must be a list of strings, got {value}");
        value
            .as_array()
            .ok_or_else(error)?
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(error))
            .collect()
    }

    pub fn relation(&self, name: &str) -> Result<Relation, String> {
        match self.string(name)? {
            "less than" => Ok(Relation::LessThan),
            "at least" => Ok(Relation::AtLeast),
            other => Err(format!(
                "argument `{name}` must be \"less than\" or \"at least\", got {other:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falsy_values_count_as_absent_like_the_official_checker() {
        let args = Args::parse(
            r#"{"num_words": 0, "relation": null}"#,
            &["num_words", "relation"],
        )
        .unwrap();
        assert_eq!(
            args.int("num_words").unwrap_err(),
            "argument `num_words` is required"
        );
    }

    #[test]
    fn wrong_types_and_unknown_names_are_errors_that_name_the_argument() {
        let args = Args::parse(r#"{"num_words": "300"}"#, &["num_words"]).unwrap();
        assert_eq!(
            args.int("num_words").unwrap_err(),
            "argument `num_words` must be an integer, got \"300\""
        );
        assert_eq!(
            Args::parse(r#"{"nope": 1}"#, &["num_words"]).err().unwrap(),
            "unknown argument `nope` (this instruction takes: num_words)"
        );
        assert!(Args::parse("[1]", &[]).is_err());
        assert!(Args::parse("{", &[]).is_err());
        let args = Args::parse(r#"{"relation": "more than"}"#, &["relation"]).unwrap();
        assert!(args.relation("relation").is_err());
    }
}
