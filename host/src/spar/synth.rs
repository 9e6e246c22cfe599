//! Training prompts with verifiable constraints: a plain task plus one to three constraints drawn
//! from the verifier plugins' catalogues, each phrased by the plugin's own `describe`, written in
//! IFEval's input format (`key`, `prompt`, `instruction_id_list`, `kwargs`).
//!
//! The host knows no instruction: what arguments to draw, and which constraints go together, the
//! plugins say in each constraint's `args-schema` (see `wit/verifier.wit`):
//! - a property's `enum`, its `minimum`/`maximum` (with `multipleOf`), an array's `items.enum`
//!   with `minItems`/`maxItems`, or `"x-spar-fill": "task"` (the task text itself);
//! - the object's `examples` (whole argument objects, for arguments that depend on each other);
//! - `"x-spar-synth": false` (never drawn: the instruction is a task of its own),
//!   `"x-spar-alone": true` (never combined with another constraint) and `"x-spar-conflicts"`
//!   (ids it must not be combined with).
//!
//! An id with a required argument the schema gives no way to draw is never used.

use serde_json::{Map, Value, json};

use crate::engine::sampling::Rng;
use crate::plugins::verifiers::VerifierSessions;

/// One constraint of the catalogue, as the synthesiser sees it.
pub struct Drawable {
    pub id: String,
    schema: Value,
}

impl Drawable {
    /// `None` when the schema says never to draw it (or is not JSON).
    pub fn new(id: &str, schema: &str) -> Option<Drawable> {
        let schema: Value = serde_json::from_str(schema).ok()?;
        if schema.get("x-spar-synth") == Some(&Value::Bool(false)) {
            return None;
        }
        Some(Drawable {
            id: id.to_string(),
            schema,
        })
    }

    fn alone(&self) -> bool {
        self.schema.get("x-spar-alone") == Some(&Value::Bool(true))
    }

    fn conflicts_with(&self, other: &str) -> bool {
        self.schema
            .get("x-spar-conflicts")
            .and_then(Value::as_array)
            .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(other)))
    }

    /// Arguments drawn from the schema, or `None` when some required one cannot be drawn.
    fn draw(&self, task: &str, rng: &mut Rng) -> Option<Value> {
        if let Some(examples) = self.schema.get("examples").and_then(Value::as_array)
            && !examples.is_empty()
        {
            return Some(examples[pick(rng, examples.len())].clone());
        }
        let properties = self.schema.get("properties").and_then(Value::as_object);
        let mut args = Map::new();
        for name in self
            .schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str()?;
            let property = properties?.get(name)?;
            args.insert(name.to_string(), draw_value(property, task, rng)?);
        }
        Some(Value::Object(args))
    }
}

fn pick(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// One value of a property schema.
fn draw_value(property: &Value, task: &str, rng: &mut Rng) -> Option<Value> {
    if property.get("x-spar-fill").and_then(Value::as_str) == Some("task") {
        return Some(json!(task));
    }
    if let Some(options) = property.get("enum").and_then(Value::as_array)
        && !options.is_empty()
    {
        return Some(options[pick(rng, options.len())].clone());
    }
    match property.get("type").and_then(Value::as_str)? {
        "integer" | "number" => {
            let low = property.get("minimum")?.as_f64()?;
            let high = property.get("maximum")?.as_f64()?;
            let step = property
                .get("multipleOf")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            if !(step > 0.0 && low <= high) {
                return None;
            }
            let first = (low / step).ceil() as i64;
            let last = (high / step).floor() as i64;
            if first > last {
                return None;
            }
            let n = first + pick(rng, (last - first + 1) as usize) as i64;
            Some(if step.fract() == 0.0 {
                json!(n * step as i64)
            } else {
                json!(n as f64 * step)
            })
        }
        "array" => {
            let items: Vec<Value> = property.get("items")?.get("enum")?.as_array()?.clone();
            let min = property
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1) as usize;
            let max = property
                .get("maxItems")
                .and_then(Value::as_u64)
                .map_or(items.len(), |m| m as usize)
                .min(items.len());
            if min > max || items.is_empty() {
                return None;
            }
            let count = min + pick(rng, max - min + 1);
            let mut pool = items;
            let mut chosen = Vec::with_capacity(count);
            for _ in 0..count {
                chosen.push(pool.remove(pick(rng, pool.len())));
            }
            Some(Value::Array(chosen))
        }
        _ => None,
    }
}

/// Whether `a` and `b` may be asked for in one prompt.
fn compatible(a: &Drawable, b: &Drawable) -> bool {
    !(a.alone() || b.alone() || a.conflicts_with(&b.id) || b.conflicts_with(&a.id))
}

/// `n` prompts from `tasks` with 1–3 constraints each. The same seed gives the same prompts.
pub fn synthesize(
    tasks: &[String],
    catalogue: &[Drawable],
    sessions: &mut VerifierSessions<'_>,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<Value>> {
    anyhow::ensure!(!tasks.is_empty(), "no tasks to build prompts from");
    anyhow::ensure!(
        !catalogue.is_empty(),
        "the verifiers offer no constraint that can be drawn for a prompt"
    );
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    let mut attempts = 0;
    while out.len() < n {
        attempts += 1;
        anyhow::ensure!(
            attempts < n * 100 + 100,
            "the catalogue offers no usable constraints"
        );
        let task = &tasks[pick(&mut rng, tasks.len())];
        let want = 1 + pick(&mut rng, 3);
        let mut chosen: Vec<&Drawable> = Vec::new();
        let mut kwargs: Vec<Value> = Vec::new();
        let mut sentences = Vec::new();
        for _ in 0..want * 4 {
            if chosen.len() == want {
                break;
            }
            let candidate = &catalogue[pick(&mut rng, catalogue.len())];
            if chosen
                .iter()
                .any(|c| c.id == candidate.id || !compatible(c, candidate))
            {
                continue;
            }
            let Some(args) = candidate.draw(task, &mut rng) else {
                continue;
            };
            let Ok(sentence) = sessions.describe(&candidate.id, &args.to_string()) else {
                continue;
            };
            chosen.push(candidate);
            kwargs.push(args);
            sentences.push(sentence);
        }
        if chosen.is_empty() {
            continue;
        }
        let ids: Vec<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
        out.push(json!({
            "key": out.len(),
            "prompt": format!("{task} {}", sentences.join(" ")),
            "instruction_id_list": ids,
            "kwargs": kwargs,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawable(schema: &str) -> Drawable {
        Drawable::new("x:y", schema).unwrap()
    }

    #[test]
    fn values_come_from_the_schema_hints_only() {
        let mut rng = Rng::new(3);
        let d = drawable(
            r#"{"type":"object","properties":{"n":{"type":"integer","minimum":50,"maximum":100,"multipleOf":25},"r":{"type":"string","enum":["a","b"]},"t":{"type":"string","x-spar-fill":"task"},"k":{"type":"array","items":{"enum":["p","q","s"]},"minItems":2,"maxItems":2}},"required":["n","r","t","k"]}"#,
        );
        for _ in 0..50 {
            let args = d.draw("the task", &mut rng).unwrap();
            assert!(
                [50, 75, 100].contains(&args["n"].as_i64().unwrap()),
                "{args}"
            );
            assert!(["a", "b"].contains(&args["r"].as_str().unwrap()));
            assert_eq!(args["t"], "the task");
            let k = args["k"].as_array().unwrap();
            assert!(k.len() == 2 && k[0] != k[1]);
        }
        // A required string with no hint cannot be drawn.
        let free = drawable(r#"{"properties":{"s":{"type":"string"}},"required":["s"]}"#);
        assert!(free.draw("t", &mut rng).is_none());
        let examples = drawable(r#"{"examples":[{"a":1}],"required":["a"]}"#);
        assert_eq!(examples.draw("t", &mut rng).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn synth_false_alone_and_conflicts_are_honoured() {
        assert!(Drawable::new("a", r#"{"x-spar-synth":false}"#).is_none());
        let alone = drawable(r#"{"x-spar-alone":true}"#);
        let plain = Drawable::new("b", "{}").unwrap();
        let picky = Drawable::new("c", r#"{"x-spar-conflicts":["b"]}"#).unwrap();
        assert!(!compatible(&alone, &plain));
        assert!(!compatible(&plain, &picky) && !compatible(&picky, &plain));
        assert!(compatible(&plain, &Drawable::new("d", "{}").unwrap()));
    }
}
