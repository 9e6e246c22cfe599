//! The self-play steps: judging responses, refining failed ones by tree search, and turning the
//! searches into preference pairs and refiner training data.

pub mod journal;
pub mod judge;
pub mod pairs;
pub mod refine;
pub mod refiner_data;
pub mod repair;
pub mod run;
pub mod search;
pub mod similarity;
pub mod steps;
pub mod synth;
