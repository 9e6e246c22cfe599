//! Evaluation: scoring responses with verifier plugins.

pub mod ifeval;
pub mod python_json;
