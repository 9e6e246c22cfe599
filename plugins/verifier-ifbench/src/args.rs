//! Instruction arguments as IFBench reads them: a JSON object whose `null` values count as absent
//! (`run_eval.py` drops them), numbers that may be written as floats (`"N": 8.0`), and an error
//! naming the argument wherever IFBench would draw a random value or crash.

use serde_json::{Map, Value};

/// The arguments of one instruction.
pub struct Args {
    values: Map<String, Value>,
}

impl Args {
    /// Parse `json`; every non-null argument must be one of `allowed`, unless `any_extra` (the
    /// checkers whose constructor takes `**kwargs` ignore what they are given).
    pub fn parse(json: &str, allowed: &[&str], any_extra: bool) -> Result<Args, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("arguments are not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err(format!("arguments must be a JSON object, got {value}"));
        };
        let values: Map<String, Value> = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
        if !any_extra && let Some(unknown) = values.keys().find(|k| !allowed.contains(&k.as_str()))
        {
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

    /// A number (IFBench compares floats as given: a percentage may be 72.5).
    pub fn number(&self, name: &str) -> Result<f64, String> {
        let value = self.required(name)?;
        value
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("argument `{name}` must be a number, got {value}"))
    }

    /// A whole number of at least `min` (`8` or `8.0`).
    pub fn count(&self, name: &str, min: i64) -> Result<i64, String> {
        let value = self.required(name)?;
        let whole = value.as_i64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        });
        match whole {
            Some(n) if n >= min => Ok(n),
            Some(n) => Err(format!("argument `{name}` must be at least {min}, got {n}")),
            None => Err(format!(
                "argument `{name}` must be a whole number, got {value}"
            )),
        }
    }

    pub fn string(&self, name: &str) -> Result<&str, String> {
        let value = self.required(name)?;
        value
            .as_str()
            .ok_or_else(|| format!("argument `{name}` must be a string, got {value}"))
    }

    /// A string that must not be empty (IFBench draws a random keyword for an empty one).
    pub fn non_empty(&self, name: &str) -> Result<&str, String> {
        let text = self.string(name)?;
        if text.is_empty() {
            return Err(format!("argument `{name}` must not be empty"));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_absent_and_floats_are_whole_numbers() {
        let args = Args::parse(r#"{"N": 8.0, "word": null}"#, &["N", "word"], false).unwrap();
        assert_eq!(args.count("N", 1).unwrap(), 8);
        assert_eq!(
            args.string("word").unwrap_err(),
            "argument `word` is required"
        );
        // IFBench keeps falsy values (only None is dropped): 0 is a valid count.
        let args = Args::parse(r#"{"N": 0}"#, &["N"], false).unwrap();
        assert_eq!(args.count("N", 0).unwrap(), 0);
        assert_eq!(
            args.count("N", 1).unwrap_err(),
            "argument `N` must be at least 1, got 0"
        );
    }

    #[test]
    fn wrong_types_and_unknown_names_name_the_argument() {
        let args = Args::parse(r#"{"N": 2.5, "s": 3}"#, &["N", "s"], false).unwrap();
        assert_eq!(
            args.count("N", 0).unwrap_err(),
            "argument `N` must be a whole number, got 2.5"
        );
        assert_eq!(
            args.string("s").unwrap_err(),
            "argument `s` must be a string, got 3"
        );
        assert_eq!(
            Args::parse(r#"{"nope": 1}"#, &["N"], false).err().unwrap(),
            "unknown argument `nope` (this instruction takes: N)"
        );
        assert!(Args::parse(r#"{"nope": 1}"#, &[], true).is_ok());
        assert!(Args::parse("[1]", &[], false).is_err());
    }
}
