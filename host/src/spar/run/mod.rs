//! `spar-host run`: SPaR's iterations end to end from a config. Every stage writes its output
//! atomically into the run directory and is skipped when that output already exists, so running
//! the same command again after a stop continues where it left off.
//!
//! One iteration, in `iter-N/`:
//! 1. the actor samples answers to the training prompts ([`stages::actor_samples`]);
//! 2. the refiner judges them, 3. refines the failed ones by tree search
//!    ([`stages::judge_and_search`]);
//! 4. the trees become preference pairs, and the trees whose pairs pass the filters, with the
//!    judgments, the refiner's RFT data ([`stages::pairs`]);
//! 5. DPO trains the actor on the pairs, 6. SFT trains the refiner on its data ([`training`]);
//! 7. the new actor answers the held-out prompts ([`evaluate`]).

mod evaluate;
mod plan;
pub mod report;
mod resume;
mod stages;
mod training;

use std::path::{Path, PathBuf};

pub use plan::Role;
pub use resume::sample_resumably;

/// What the loop reports after each iteration: the held-out pass rates before the first
/// iteration and after this one (None without an eval set).
pub struct IterationDone<'a> {
    pub run_dir: &'a Path,
    pub iteration: usize,
    pub baseline: Option<f64>,
    pub after: Option<f64>,
}

/// Run (or continue) the SPaR loop described by `config_path`; `on_iteration` is told when each
/// iteration (training and evaluation) is done. Returns the run directory.
pub fn run(
    config_path: &Path,
    sets: &[String],
    force: bool,
    on_iteration: &mut dyn FnMut(IterationDone) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    let run = plan::Run::open(config_path, sets, force)?;
    let mut actor = run.initial_model(Role::Actor);
    let mut refiner = run.initial_model(Role::Refiner);
    run.start_stage();
    let baseline = evaluate::evaluate(&run, 0, &actor, &run.dir.join("baseline-eval.jsonl"))?;
    (actor, refiner) = training::init(&run, actor, refiner)?;
    for iteration in 1..=run.config.iterations {
        let dir = run.dir.join(format!("iter-{iteration}"));
        std::fs::create_dir_all(&dir)?;
        // Each stage gets the plugins' whole time budget.
        run.start_stage();
        stages::actor_samples(&run, iteration, &dir, &actor)?;
        run.start_stage();
        stages::judge_and_search(&run, iteration, &dir, &refiner)?;
        run.start_stage();
        stages::pairs(&run, iteration, &dir)?;
        actor = training::dpo(&run, iteration, &dir, &actor)?;
        refiner = training::rft(&run, iteration, &dir, &refiner)?;
        run.start_stage();
        let after = evaluate::evaluate(&run, iteration, &actor, &dir.join("eval.jsonl"))?;
        // The report is derived from the files above; failing to draw it stops nothing.
        let page = run.dir.join("report.html");
        if let Err(error) = report::write_report(&run.dir, run.report_verifiers(), &page) {
            tracing::warn!("{}: no report: {error:#}", page.display());
        }
        on_iteration(IterationDone {
            run_dir: &run.dir,
            iteration,
            baseline,
            after,
        })?;
    }
    eprintln!(
        "done: the actor is {}, the refiner {}",
        actor.display(),
        refiner.display()
    );
    Ok(run.dir)
}
