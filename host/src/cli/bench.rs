//! `spar-host bench`: rerunnable measurements.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::plugins::{Limits, PluginHost, VerifierPlugin};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Plugin-call overhead of a verifier: compile, instantiate and per-call cost of `check`.
    Plugin {
        /// A verifier plugin.
        file: PathBuf,
        /// Constraint id to check (default: the first the plugin lists).
        #[arg(long)]
        id: Option<String>,
        /// Constraint arguments as JSON.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Calls to time.
        #[arg(long, default_value_t = 200_000)]
        calls: u32,
        /// Fresh instances to time.
        #[arg(long, default_value_t = 2_000)]
        instances: u32,
    },
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Plugin {
            file,
            id,
            args,
            calls,
            instances,
        } => {
            let host = PluginHost::new(Limits::default())?;
            let started = Instant::now();
            let plugin: VerifierPlugin = host.load(&file)?;
            let load = started.elapsed();
            let id = match id {
                Some(id) => id,
                None => plugin
                    .session()
                    .constraints()?
                    .first()
                    .map(|c| c.id.clone())
                    .ok_or_else(|| {
                        anyhow::anyhow!("{}: lists no constraints; pass --id", file.display())
                    })?,
            };
            let prompt = "Write a haiku about rivers. Do not use any commas.";
            let response =
                "Water finds its way\nthrough stone and root and shadow\nto the patient sea";

            let started = Instant::now();
            for _ in 0..instances {
                plugin.session().instantiate()?;
            }
            let instantiate = started.elapsed() / instances.max(1);

            let mut session = plugin.session();
            session.check(&id, &args, prompt, response)?;
            let started = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(session.check(&id, &args, prompt, response)?);
            }
            let per_call = started.elapsed() / calls.max(1);

            println!("plugin        {} ({})", plugin.name(), file.display());
            println!(
                "load          {:.1} ms (read, inspect, compile, pre-instantiate, info)",
                ms(load)
            );
            println!(
                "instantiate   {:.1} us per fresh instance (mean of {instances})",
                us(instantiate)
            );
            println!(
                "check `{id}`  {} ns per call (mean of {calls}, {} + {} bytes of text)",
                per_call.as_nanos(),
                prompt.len(),
                response.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
