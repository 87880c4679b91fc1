//! Options shared by the commands that run a model.

use std::path::PathBuf;

use anyhow::Context;
use kestrel::{Engine, EngineOptions, Sampling};

/// Model and device options.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// The .kst model file (from `kestrel convert`).
    pub model: PathBuf,
    /// GPU adapter: a name substring or backend ("vulkan", "llvmpipe"); default: a real GPU if
    /// present, else the CPU Vulkan adapter. Also KESTREL_ADAPTER.
    #[arg(long)]
    pub adapter_name: Option<String>,
    /// Context window in tokens (default: min(model maximum, 4096)).
    #[arg(long)]
    pub context: Option<usize>,
    /// A LoRA adapter .kst (from `kestrel convert <peft_dir> --base model.kst`) to load.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<Engine> {
        let mut opts = EngineOptions::default();
        if let Some(a) = &self.adapter_name {
            opts.gpu.adapter = Some(a.clone());
        }
        opts.max_context = self.context;
        let mut engine = Engine::load(&self.model, opts)
            .with_context(|| format!("loading {}", self.model.display()))?;
        if let Some(a) = &self.adapter {
            engine
                .load_adapter(a)
                .with_context(|| format!("loading adapter {}", a.display()))?;
        }
        log::info!("adapter: {}", engine.adapter_description());
        Ok(engine)
    }
}

/// Sampling options.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 = greedy (the default).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    /// Nucleus sampling: keep the most likely tokens up to this total probability (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// RNG seed: the same seed gives the same tokens.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
}
