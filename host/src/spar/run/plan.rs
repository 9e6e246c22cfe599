//! The resolved plan of a run: the config (checked against the one the run directory was made
//! with), absolute paths, the loaded plugins, and the two roles' models and samplers.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{DType, Device};

use crate::backend::openai::OpenAiBackend;
use crate::backend::sampler::ChatSampler;
use crate::config::{self, RunConfig, ServerConfig};
use crate::engine::loader::{self, LoadedModel};
use crate::engine::model::Transformer;
use crate::plugins::verifiers::Verifiers;
use crate::plugins::{FilterPlugin, JudgePlugin, PluginHost, SearchPlugin, World, builtin};
use crate::spar::judge::{JudgeMode, Judger};
use crate::storage::MetricsLog;

/// A checkpoint loaded on the embedded engine.
pub struct Model {
    loaded: LoadedModel,
    transformer: Transformer,
}

fn load_model(path: &Path, device: &Device, dtype: DType) -> anyhow::Result<Model> {
    let loaded = loader::load(path)?;
    let transformer = loaded.transformer(dtype, device)?;
    Ok(Model {
        loaded,
        transformer,
    })
}

/// The two models SPaR trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Actor,
    Refiner,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Actor => "actor",
            Role::Refiner => "refiner",
        }
    }
}

/// The run: config, resolved paths, plugins, metrics.
pub struct Run {
    pub config: RunConfig,
    pub dir: PathBuf,
    /// The config file's folder: relative paths in the config mean paths from there.
    base: PathBuf,
    pub device: Device,
    judge: JudgePlugin,
    pub verifiers: Option<Verifiers>,
    pub strategy: SearchPlugin,
    pub filters: Vec<(FilterPlugin, String)>,
    /// Verifiers for the held-out evaluation (the judge's when it has them).
    eval_verifiers: Option<Verifiers>,
    pub metrics: MetricsLog,
}

impl Run {
    /// Load and validate the config, guard the run directory against a different config (unless
    /// `force`), and load every plugin it names (the built-in ones where it names none).
    pub fn open(config_path: &Path, sets: &[String], force: bool) -> anyhow::Result<Run> {
        let config = config::load(config_path, sets)?;
        let base = config_path.parent().map(PathBuf::from).unwrap_or_default();
        let host = PluginHost::new(config.sandbox.limits())?;
        let problems = config::validate(&config, &base, &host);
        if !problems.is_empty() {
            bail!("{}: {}", config_path.display(), problems.join("; "));
        }
        let resolve = |p: &Path| absolute(&base, p);
        let dir = resolve(&config.run_dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create the run directory", dir.display()))?;
        guard_run_dir(&dir, &config, force)?;

        let find = |p: &Option<PathBuf>, world: World| -> anyhow::Result<PathBuf> {
            match p {
                Some(p) => Ok(resolve(p)),
                None => builtin::default_for(world),
            }
        };
        let judge = host.load(&find(&config.judge.plugin, World::Judge)?)?;
        // Verifiers judge (verifier and hybrid modes) and repair (refine = repair or both).
        let verifiers = if config.judge.mode == JudgeMode::Llm
            && !config.search.refine.uses_repair()
        {
            None
        } else {
            let given: Vec<PathBuf> = config.judge.verifiers.iter().map(|v| resolve(v)).collect();
            let paths = builtin::verifiers_or_default(&given)?;
            Some(Verifiers::load(&host, &paths)?)
        };
        let strategy = host.load(&find(&config.search.plugin, World::SearchStrategy)?)?;
        // No [[filters]]: none, as SPaR keeps every pair whose refinement passed the gate.
        let mut filters = Vec::new();
        for f in &config.filters {
            filters.push((
                host.load(&resolve(&f.plugin))?,
                serde_json::to_string(&f.config)?,
            ));
        }
        let device = crate::engine::device::parse(&config.device)?;
        let eval_verifiers = if config.prompts.eval.is_some() && verifiers.is_none() {
            Some(Verifiers::load(
                &host,
                &[builtin::default_for(World::Verifier)?],
            )?)
        } else {
            None
        };
        Ok(Run {
            metrics: MetricsLog::new(&dir),
            config,
            dir,
            base,
            device,
            judge,
            verifiers,
            strategy,
            filters,
            eval_verifiers,
        })
    }

    /// Start a stage: every plugin's time budget for one stage counts from zero again.
    pub fn start_stage(&self) {
        self.judge.start_stage();
        self.strategy.start_stage();
        for (filter, _) in &self.filters {
            filter.start_stage();
        }
        for verifiers in [&self.verifiers, &self.eval_verifiers]
            .into_iter()
            .flatten()
        {
            verifiers.start_stage();
        }
    }

    /// A session of the judge plugin, for its prompts (the refiner's training data).
    pub fn judge_session(&self) -> crate::plugins::Session<crate::plugins::bindings::judge::Judge> {
        self.judge.session()
    }

    /// The verifiers the report checks pairs' constraints with, if the run loaded any.
    pub fn report_verifiers(&self) -> Option<&Verifiers> {
        self.verifiers.as_ref().or(self.eval_verifiers.as_ref())
    }

    /// The verifiers that check held-out answers.
    pub fn eval_verifiers(&self) -> &Verifiers {
        self.verifiers
            .as_ref()
            .or(self.eval_verifiers.as_ref())
            .expect("loaded when there is an eval set")
    }

    fn server(&self, role: Role) -> Option<&ServerConfig> {
        match role {
            Role::Actor => self.config.servers.actor.as_ref(),
            Role::Refiner => self.config.servers.refiner.as_ref(),
        }
    }

    /// The role's model on the embedded engine; `None` when a server generates for the role
    /// (after making sure it serves `checkpoint`, see [`Run::ensure_served`]).
    pub fn local_model(&self, role: Role, checkpoint: &Path) -> anyhow::Result<Option<Model>> {
        if self.server(role).is_some() {
            self.ensure_served(role, checkpoint)?;
            return Ok(None);
        }
        Ok(Some(load_model(
            checkpoint,
            &self.device,
            self.config.dtype.dtype(),
        )?))
    }

    /// A sampler for `role`: its server's, or the embedded engine on `model`.
    pub fn sampler<'m>(
        &self,
        role: Role,
        model: Option<&'m Model>,
    ) -> anyhow::Result<ChatSampler<'m>> {
        let batch_size = self.config.actor.batch_size;
        match (self.server(role), model) {
            (Some(server), _) => ChatSampler::on_server(server.clone(), batch_size),
            (None, Some(model)) => ChatSampler::new(
                &model.loaded,
                &model.transformer,
                self.device.clone(),
                batch_size,
            ),
            (None, None) => unreachable!("local_model loads a model for local roles"),
        }
    }

    /// A served role whose checkpoint changed (training made a new one): run its
    /// `reload_command` and wait for the server, once per checkpoint (recorded in the run
    /// directory, so a resumed run does not reload again). Without a reload command, warn that
    /// the server keeps generating with its own model.
    fn ensure_served(&self, role: Role, checkpoint: &Path) -> anyhow::Result<()> {
        let server = self.server(role).expect("called for served roles");
        let initial = self.initial_model(role);
        let marker = self.dir.join(format!("{}-served.txt", role.name()));
        let served = std::fs::read_to_string(&marker)
            .map(PathBuf::from)
            .unwrap_or(initial);
        if served == checkpoint {
            return Ok(());
        }
        let Some(command) = &server.reload_command else {
            tracing::warn!(
                "servers.{}: no reload_command, so {} keeps serving its model; the new checkpoint {} is not used for generation",
                role.name(),
                server.url,
                checkpoint.display()
            );
            return Ok(());
        };
        let line = command.replace("{model}", &checkpoint.display().to_string());
        eprintln!("servers.{}: reloading: {line}", role.name());
        // Relative paths in the command mean what they mean in the config: from its folder.
        let status = std::process::Command::new("sh")
            .args(["-c", &line])
            .current_dir(if self.base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &self.base
            })
            .status()
            .with_context(|| format!("servers.{}.reload_command: cannot start", role.name()))?;
        if !status.success() {
            bail!(
                "servers.{}.reload_command failed ({status}): {line}",
                role.name()
            );
        }
        OpenAiBackend::new(server.clone())?
            .wait_until_ready(std::time::Duration::from_secs_f64(server.timeout_s))?;
        crate::storage::write_atomic(&marker, checkpoint.display().to_string().as_bytes())
    }

    /// The checkpoint a role starts from (the refiner defaults to the actor's).
    pub fn initial_model(&self, role: Role) -> PathBuf {
        let models = &self.config.models;
        self.resolve(match role {
            Role::Actor => &models.actor,
            Role::Refiner => models.refiner.as_ref().unwrap_or(&models.actor),
        })
    }

    /// A path from the config, made absolute.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        absolute(&self.base, p)
    }

    /// The judge of one iteration (`salt` varies its seed).
    pub fn judger<'a>(
        &'a self,
        sampler: Option<&'a ChatSampler<'a>>,
        salt: u64,
    ) -> anyhow::Result<Judger<'a>> {
        Judger::from_config(
            &self.config.judge,
            self.config.seed ^ salt,
            sampler,
            &self.judge,
            self.verifiers.as_ref(),
        )
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Write the resolved config into the run directory; refuse a directory made by a different
/// config unless `force`, naming the keys that differ.
fn guard_run_dir(dir: &Path, config: &RunConfig, force: bool) -> anyhow::Result<()> {
    let resolved = toml::to_string(config)?;
    let resolved_path = dir.join("config.toml");
    if let Ok(previous) = std::fs::read_to_string(&resolved_path)
        && previous != resolved
        && !force
    {
        let old: toml::Table = toml::from_str(&previous).unwrap_or_default();
        let new: toml::Table = toml::from_str(&resolved).unwrap_or_default();
        let mut differing: Vec<String> = new
            .keys()
            .chain(old.keys())
            .filter(|k| old.get(*k) != new.get(*k))
            .cloned()
            .collect();
        differing.sort();
        differing.dedup();
        bail!(
            "{}: this run directory was made by a different config (differs in: {}); use another run_dir or pass --force",
            dir.display(),
            differing.join(", ")
        );
    }
    crate::storage::write_atomic(&resolved_path, resolved.as_bytes())
}
