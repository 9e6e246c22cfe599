//! Text semantics that Python instruction checkers (IFEval's, IFBench's) rely on, ported so that a
//! verifier plugin gives the same verdict as the checker it reimplements:
//! - [`punkt`]: NLTK's English Punkt sentence splitter (`nltk.sent_tokenize`), parameters built in;
//! - [`word_tokenize`]: NLTK's `word_tokenize` (Treebank words within Punkt sentences);
//! - [`python`]: Python's `str` methods and `re` meanings where Rust's differ.
//!
//! A library for plugins, not a plugin: it has no WIT world and no file access.

pub mod punkt;
pub mod python;
#[rustfmt::skip]
mod python_tables;
pub mod word_tokenize;
