//! Options shared by the commands that run a model.

use std::path::PathBuf;

use anyhow::Context;
use kestrel::{Engine, EngineOptions, HeadKind, Mode, Sampling, ThinkingBudget};

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
    /// Skip the CRC32 check of every tensor at load (on by default: a corrupted file is refused
    /// instead of producing garbage).
    #[arg(long)]
    pub no_verify: bool,
}

impl ModelArgs {
    /// Refuses, with the command that fixes it, a model path that is not a `.kst` file: a
    /// directory (an HF checkpoint), a GGUF file, a missing file.
    pub fn check_path(&self) -> anyhow::Result<()> {
        check_kst_path(&self.model, "model")
    }

    /// Refuses wgpu's noop backend by name (`--adapter-name noop` or `KESTREL_ADAPTER=noop`):
    /// it executes no kernel, so every token would be meaningless.
    pub fn check_backend(&self) -> anyhow::Result<()> {
        let pref = self
            .adapter_name
            .clone()
            .or_else(|| std::env::var(kestrel_kernels::runtime::adapter::ENV_ADAPTER).ok());
        if pref.is_some_and(|p| p.trim().eq_ignore_ascii_case("noop")) {
            anyhow::bail!(
                "the noop backend executes no kernel, so its tokens would be meaningless; it \
                 measures host cost only: kestrel bench --backend noop"
            );
        }
        Ok(())
    }

    pub fn load(&self) -> anyhow::Result<Engine> {
        self.check_path()?;
        self.check_backend()?;
        let mut opts = env_options()?;
        if let Some(a) = &self.adapter_name {
            opts.gpu.adapter = Some(a.clone());
        }
        opts.max_context = self.context;
        opts.verify_checksums = !self.no_verify;
        let mut engine = Engine::load(&self.model, opts)
            .with_context(|| format!("loading {}", self.model.display()))?;
        if engine.gpu().adapter_info().backend == wgpu::Backend::Noop {
            anyhow::bail!("the noop backend executes no kernel; use a real adapter");
        }
        if let Some(a) = &self.adapter {
            engine
                .load_adapter(a)
                .with_context(|| format!("loading adapter {}", a.display()))?;
        }
        log::info!("adapter: {}", engine.adapter_description());
        Ok(engine)
    }
}

/// Engine options from the `KESTREL_*` environment variables the CLI honours (the library reads
/// none):
/// - `KESTREL_ADAPTER`: adapter preference (as `--adapter-name`);
/// - `KESTREL_DEVICE_PROFILE` = `cpu` | `gpu`: the device profile (default: by adapter type);
/// - `KESTREL_NO_F16=1`, `KESTREL_NO_SUBGROUPS=1`, `KESTREL_NO_UNIFORM_X=1`,
///   `KESTREL_NO_TEXTURE_X=1`, `KESTREL_NO_WEIGHT_TEXTURES=1`: turn that device feature or
///   profile decision off;
/// - `KESTREL_SHADER_CHECKS=0`: kernels without naga's bounds checks (benchmarking);
/// - `KESTREL_PROFILE=1`: time every kernel (`generate --stats` prints the table).
pub fn env_options() -> anyhow::Result<EngineOptions> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let on = |name: &str| var(name).is_some_and(|v| v == "1");
    let profile = var("KESTREL_DEVICE_PROFILE")
        .map(|v| v.parse::<kestrel_kernels::ProfileKind>())
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(EngineOptions {
        gpu: kestrel_kernels::GpuOptions {
            adapter: var(kestrel_kernels::runtime::adapter::ENV_ADAPTER),
            disable_f16: on("KESTREL_NO_F16"),
            disable_subgroups: on("KESTREL_NO_SUBGROUPS"),
            profile,
            disable_uniform_x: on("KESTREL_NO_UNIFORM_X"),
            disable_texture_x: on("KESTREL_NO_TEXTURE_X"),
            disable_weight_textures: on("KESTREL_NO_WEIGHT_TEXTURES"),
            unchecked_shaders: var("KESTREL_SHADER_CHECKS").is_some_and(|v| v == "0"),
            noop: false,
        },
        profile_kernels: var("KESTREL_PROFILE").is_some_and(|v| v != "0"),
        ..EngineOptions::default()
    })
}

/// The checks of [`ModelArgs::check_path`] for any `.kst` input (`what`: model, adapter, ...).
pub fn check_kst_path(path: &std::path::Path, what: &str) -> anyhow::Result<()> {
    let shown = path.display();
    let convert = |out: &str| format!("convert it first: kestrel convert {shown} -o {out}");
    let meta = std::fs::metadata(path).with_context(|| format!("{what} {shown}"))?;
    if meta.is_dir() {
        anyhow::bail!(
            "{what} {shown} is a directory, not a .kst file; if it is a Hugging Face checkpoint, {}",
            convert("model.kst")
        );
    }
    let mut magic = [0u8; 4];
    let is_gguf = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"GGUF";
    if is_gguf {
        anyhow::bail!(
            "{what} {shown} is a GGUF file, not a .kst file; {}",
            convert(&path.with_extension("kst").display().to_string())
        );
    }
    Ok(())
}

/// Sampling options.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 = greedy (the default).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    /// Nucleus sampling: keep the most likely tokens up to this total probability (1 = off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub top_p: f32,
    /// RNG seed: the same seed gives the same tokens.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The values, validated (before the model loads, so a bad value fails at once).
    pub fn checked(&self) -> anyhow::Result<Sampling> {
        let s = self.sampling();
        s.validate()?;
        Ok(s)
    }

    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
}

/// How a request decodes: mode, switcher head and thinking budget (`generate`, `chat`).
#[derive(clap::Args, Debug, Clone)]
pub struct ReasoningArgs {
    /// chat: decode with the base weights; reasoning: decode with the LoRA adapter (--adapter) on,
    /// over the prompt KV the base weights encoded (KV sharing); auto: the switcher head
    /// (--switcher) reads the encoded prompt and picks chat or reasoning (printed on stderr).
    #[arg(long, value_enum, default_value_t = ModeArg::Chat)]
    pub mode: ModeArg,
    /// A switcher head .kst (`kestrel convert head_dir --base model.kst`), for --mode auto.
    #[arg(long, value_name = "SWITCHER.kst")]
    pub switcher: Option<PathBuf>,
    /// Thinking budget (budget forcing): after N sampled tokens without the end-of-thinking
    /// marker (--think-end), the marker is forced and the model goes on to its answer.
    #[arg(long, value_name = "N")]
    pub think_budget: Option<usize>,
    /// The end-of-thinking marker: what budget forcing inserts, and where --paths answers
    /// start.
    #[arg(long, default_value = "</think>")]
    pub think_end: String,
}

impl ReasoningArgs {
    /// Checks the flags against `--adapter` (before the model loads, so flag errors are quick).
    pub fn check(&self, model: &ModelArgs) -> anyhow::Result<()> {
        if self.mode != ModeArg::Chat && model.adapter.is_none() {
            let mode = if self.mode == ModeArg::Auto {
                "auto"
            } else {
                "reasoning"
            };
            anyhow::bail!("--mode {mode} needs --adapter reasoning.kst");
        }
        if self.mode == ModeArg::Auto && self.switcher.is_none() {
            anyhow::bail!("--mode auto needs --switcher switcher.kst");
        }
        Ok(())
    }

    /// Loads the switcher head (if any) into `engine`.
    pub fn load_switcher(&self, engine: &mut Engine) -> anyhow::Result<()> {
        if let Some(path) = &self.switcher {
            load_head(engine, "--switcher", path, HeadKind::Switcher)?;
        }
        Ok(())
    }

    /// The request's mode and thinking budget (the end marker tokenized by `engine`).
    pub fn params(&self, engine: &Engine) -> anyhow::Result<(Mode, Option<ThinkingBudget>)> {
        let mode = match self.mode {
            ModeArg::Chat => Mode::Chat,
            ModeArg::Reasoning => Mode::Reasoning,
            ModeArg::Auto => Mode::Auto,
        };
        let thinking = match self.think_budget {
            None => None,
            Some(max_tokens) => {
                let end = engine.tokenizer().encode(&self.think_end, false)?;
                if end.is_empty() {
                    anyhow::bail!("--think-end must not be empty");
                }
                Some(ThinkingBudget { max_tokens, end })
            }
        };
        Ok((mode, thinking))
    }
}

/// Loads the head at `path` (given as `flag`), which must be of `want` kind.
pub fn load_head(
    engine: &mut Engine,
    flag: &str,
    path: &std::path::Path,
    want: HeadKind,
) -> anyhow::Result<()> {
    let kind = engine
        .load_head(path)
        .map_err(|e| anyhow::anyhow!("loading {flag} {}: {e}", path.display()))?;
    if kind != want {
        anyhow::bail!("{flag} {} holds a {kind:?} head", path.display());
    }
    Ok(())
}

/// The switcher's decision (auto mode) on stderr.
pub fn report_switch(session: &kestrel::Session<'_>) {
    if let Some(d) = session.last_switch() {
        eprintln!(
            "switcher: {:?} (p(reasoning) = {:.3})",
            d.mode,
            d.reasoning_prob()
        );
    }
}

/// `--mode`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Chat,
    Reasoning,
    Auto,
}
