//! Training: DPO for the actor, SFT/RFT for the refiner, HF-compatible checkpoints.

pub mod checkpoint;
pub mod data;
pub mod dpo;
pub mod export;
pub mod external;
pub mod logprobs;
pub mod lora;
pub mod optim;
mod reference;
pub mod step;
mod trainable;
pub mod trainer;
