//! The checkers, one module per IFBench family (the part of the id before the colon), each a
//! transcription of IFBench's `check_following`, quirks included. A quirk that matters is pinned
//! by a unit test named after it.

mod count;
mod custom;
mod format;
mod ratio;
mod repeat;
mod sentence;
mod words;

use crate::args::Args;
use crate::catalogue;

/// A built checker: whether a response follows the instruction.
pub type Check = Box<dyn Fn(&str) -> bool>;

/// The one id IFBench checks with NLTK's averaged-perceptron POS tagger, whose model this plugin
/// does not carry.
pub const NEEDS_POS_TAGGER: &str = "words:start_verb";

/// Build the checker for `id` with its JSON arguments.
pub fn build(id: &str, args_json: &str) -> Result<Check, String> {
    if id == NEEDS_POS_TAGGER {
        return Err(format!(
            "instruction `{id}` is not supported: IFBench checks it with NLTK's averaged perceptron \
             part-of-speech tagger, whose model this plugin does not include"
        ));
    }
    let entry = catalogue::entry(id)
        .ok_or_else(|| format!("unknown instruction id `{id}` (not one of IFBench's 58)"))?;
    let args = Args::parse(args_json, entry.args, entry.any_args)?;
    let (family, name) = id.split_once(':').expect("catalogue ids have a family");
    match family {
        "count" => count::build(name, &args),
        "ratio" => ratio::build(name, &args),
        "words" => words::build(name, &args),
        "sentence" => sentence::build(name, &args),
        "format" => format::build(name, &args),
        "custom" => custom::build(name),
        "repeat" => repeat::build(name, &args),
        _ => unreachable!("catalogue family {family}"),
    }
}

/// Whether `response` follows `id` with `args` (the unit tests' shorthand).
#[cfg(test)]
pub(crate) fn follows(id: &str, args: &str, response: &str) -> bool {
    build(id, args).unwrap_or_else(|e| panic!("{id}: {e}"))(response)
}
