//! Every record a run stores, one type per file format: actor samples and judgments
//! ([`sample`]), searched trees ([`tree`]), and the training data ([`training`]). They sit below
//! `spar` and `train`, which both read them; `storage::jsonl` reads and writes them, validating
//! each record on load.

mod sample;
mod training;
mod tree;

pub use sample::{Constraint, JudgedSample, Judgment, Sample, Votes};
pub use training::{PairRecord, SftRecord};
pub use tree::{NodeRecord, Tree, TreeRecord};
