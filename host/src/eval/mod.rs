//! Evaluation: scoring responses with verifier plugins on an instruction-following benchmark
//! (IFEval, IFBench), in the benchmark's own input and result formats.

pub mod benchmark;
pub mod python_json;
