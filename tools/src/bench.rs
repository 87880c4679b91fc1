//! `kestrel bench`: throughput, latency and memory of the whole engine, measured against the
//! device's own roofline in the same process; with `--backend noop`, the engine's host cost per
//! step instead (module `noop`).
//!
//! ```text
//! kestrel bench model.kst [--adapter a.kst [--lora-rounds 40]] [--prompt-tokens 128,512]
//!                         [--gen-tokens 64] [--paths 1,2,4,8] [--repeat R] [--json]
//!                         [--backend device|noop]
//! ```
//! The table goes to stdout (with `--json`: the JSON on stdout, the table on stderr), progress to
//! stderr. The GPU adapter is chosen as everywhere else (`KESTREL_ADAPTER`, else the best one).
//!
//! Order of work, chosen so the figures do not disturb each other: load → warm-up → prefill runs
//! per prompt length → decode runs (base, and adapter on) → paired LoRA rounds → reasoning TTFT
//! → multi-path decode steps → read
//! `rss_bytes` and `peak_gpu_bytes` (before any probe allocates) → GPU roofline probe → host
//! read bandwidth (CPU adapters). Each part's method is in its module: `engine_runs`,
//! `engine_paths`, `host_bw`, `model_bytes`, `sysmem`; the JSON schema is in `report`.
//!
//! With `--adapter`, the LoRA adapter is loaded and decode runs alternate between the base and
//! the adapter on (`Mode::Reasoning`). `lora_step_ratio` comes from its own `--lora-rounds`
//! paired rounds of short runs (2 decode steps with the adapter off and 2 with it on, adjacent
//! over the cached prompt, their order alternating, so drift on a noisy machine cancels): the
//! median over rounds of step (on) / step (off). One round's ratio varies by ±15–20% on a noisy
//! shared VM, so a median that can tell a few percent needs tens of rounds, more than the
//! `--repeat` of the other figures. Beside it: `lora_bytes_ratio` = adapter bytes / base weight
//! bytes, and the target `lora_step_ratio ≤ 1 + 1.1 × lora_bytes_ratio`. `path_step_ratio` is
//! paired the same way (`engine_paths`).

mod engine_paths;
mod engine_runs;
mod host_bw;
mod model_bytes;
mod noop;
mod report;
mod stats;
mod sysmem;
mod targets;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use kestrel::{Engine, EngineOptions};
use kestrel_formats::KstFile;

use report::{
    DecodeRow, DeviceInfo, GpuBytes, LoraRow, ModelInfo, PathRow, PrefillRow, ProbeVariant,
    ReasoningTtftRow, Report, Settings,
};

/// Host read-bandwidth buffer: far larger than any cache.
const HOST_PROBE_BYTES: u64 = 1 << 30;
/// Smallest host probe buffer when memory is short.
const HOST_PROBE_MIN_BYTES: u64 = 64 << 20;
/// Timed passes of the host probe.
const HOST_PROBE_PASSES: usize = 5;
/// Tokens per run of the paired LoRA rounds: the first comes from the cached prompt, so 2 timed
/// decode steps.
const LORA_PAIR_TOKENS: usize = 3;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .kst model file.
    pub model: PathBuf,
    /// A LoRA adapter .kst to compare adapter-on against adapter-off decode steps.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Prompt lengths to prefill (comma-separated); the first is also the decode prompt.
    #[arg(long, value_delimiter = ',', default_values_t = [128usize, 512])]
    pub prompt_tokens: Vec<usize>,
    /// Tokens to generate per decode run (≥ 2: the first comes from prefill).
    #[arg(long, default_value_t = 64)]
    pub gen_tokens: usize,
    /// Path counts N for the N-path step figure (comma-separated, 1..=16).
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 2, 4, 8])]
    pub paths: Vec<u32>,
    /// Repetitions of every measurement (median and spread are reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// With --adapter: paired rounds behind the LoRA on/off ratio, each 2 decode steps with the
    /// adapter off and 2 with it on; the ratio is the median over rounds (one round's ratio can
    /// swing by ±20% on a noisy machine, so use tens).
    #[arg(long, default_value_t = 40)]
    pub lora_rounds: usize,
    /// Print the report as JSON on stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// device: the GPU adapter chosen as everywhere else. noop: wgpu's noop backend, reported as
    /// a discrete GPU; no kernel executes, so the figures are the engine's host cost per step
    /// (decode at N = 1 greedy and at the other --paths with temperature 0.7, and per 128-token
    /// prefill chunk); the roofline probe is skipped.
    #[arg(long, value_enum, default_value_t = BackendArg::Device)]
    pub backend: BackendArg,
    /// Choose decode tokens on the CPU from read-back logits (the reference sampler, `[N, V]`
    /// floats read back per step) instead of on the device (N ids read back); the tokens are
    /// the same. For measuring what device sampling saves.
    #[arg(long)]
    pub pick_on_cpu: bool,
}

/// `--backend`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    Device,
    Noop,
}

impl Args {
    fn validate(&self) -> anyhow::Result<Vec<usize>> {
        if self.prompt_tokens.is_empty() || self.prompt_tokens.contains(&0) {
            bail!("--prompt-tokens needs one or more lengths ≥ 1");
        }
        if self.gen_tokens < 2 {
            bail!("--gen-tokens must be ≥ 2 (the first token comes from prefill)");
        }
        if self.repeat == 0 {
            bail!("--repeat must be ≥ 1");
        }
        if self.lora_rounds == 0 {
            bail!("--lora-rounds must be ≥ 1");
        }
        engine_paths::path_counts(&self.paths)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ns = args.validate()?;
    if args.backend == BackendArg::Noop {
        let report = noop::run(&args, &ns)?;
        return emit(args.json, &report.table(), &report);
    }
    let file =
        KstFile::open(&args.model).with_context(|| format!("opening {}", args.model.display()))?;
    let options = EngineOptions {
        pick_on_cpu: args.pick_on_cpu,
        ..crate::common::env_options()?
    };
    let mut engine = Engine::load(&args.model, options)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let alloc = |e: &Engine| e.gpu().stats().allocated_bytes;
    let after_model = alloc(&engine);
    let lora = match &args.adapter {
        Some(path) => Some(
            engine
                .load_adapter(path)
                .with_context(|| format!("loading adapter {}", path.display()))?,
        ),
        None => None,
    };
    let engine = engine;
    let after_adapter = alloc(&engine);
    let cfg = engine.config().clone();
    let gpu = engine.gpu().clone();
    let longest = args.prompt_tokens.iter().copied().max().unwrap_or(1);
    let gen_most = args.gen_tokens.max(LORA_PAIR_TOKENS);
    // Checked: a length near usize::MAX would wrap past the check and reach the allocator.
    if longest
        .checked_add(gen_most)
        .is_none_or(|n| n > engine.max_context())
    {
        bail!(
            "prompt {longest} + {gen_most} generated tokens exceed the context window of {}",
            engine.max_context()
        );
    }
    let is_cpu = gpu.adapter_info().device_type == wgpu::DeviceType::Cpu;
    // The progress bar's length only; saturating, so huge --repeat or --lora-rounds cannot wrap.
    let units = [
        args.repeat
            .saturating_mul(args.prompt_tokens.len() + 1 + 2 * usize::from(lora.is_some())),
        args.lora_rounds
            .saturating_mul(2 * usize::from(lora.is_some())),
        args.repeat.saturating_add(1).saturating_mul(ns.len()),
        2 + usize::from(is_cpu),
    ]
    .into_iter()
    .fold(0usize, usize::saturating_add);
    let bar = ProgressBar::new(units as u64);
    bar.set_style(
        ProgressStyle::with_template("bench [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.println(format!("adapter: {}", engine.adapter_description()));

    let mut session = engine.session().context("creating a session")?;
    let after_session = gpu.stats().allocated_bytes;
    let prompts: Vec<Vec<u32>> = args
        .prompt_tokens
        .iter()
        .map(|&n| engine_runs::synthetic_prompt(n, cfg.vocab_size))
        .collect();
    let first_prompt = &prompts[0];
    let variants: Vec<_> = [None].into_iter().chain(lora.map(Some)).collect();
    bar.set_message("warm-up");
    engine_runs::warm_up(&mut session, first_prompt, &variants)?;
    bar.inc(1);
    let mut prefill = Vec::new();
    for p in &prompts {
        bar.set_message(format!("prefill {}", p.len()));
        prefill.push(engine_runs::prefill(&mut session, p, args.repeat, || {
            bar.inc(1)
        })?);
    }
    bar.set_message(format!("decode {}", args.gen_tokens));
    let mut decodes = engine_runs::decode(
        &mut session,
        &gpu,
        first_prompt,
        args.gen_tokens,
        args.repeat,
        &variants,
        || bar.inc(1),
    )?
    .into_iter();
    let decode = decodes.next().context("no base decode result")?;
    let lora_decode = decodes.next();
    let lora_pairs = if lora.is_some() {
        bar.set_message(format!("LoRA on/off, {} paired rounds", args.lora_rounds));
        let mut pairs = engine_runs::decode(
            &mut session,
            &gpu,
            first_prompt,
            LORA_PAIR_TOKENS,
            args.lora_rounds,
            &variants,
            || bar.inc(1),
        )?
        .into_iter();
        pairs.next().zip(pairs.next())
    } else {
        None
    };
    let reasoning_ttft = match lora {
        Some(id) => {
            bar.set_message("reasoning TTFT (shared KV vs re-encode)");
            Some(engine_runs::reasoning_ttft(
                &mut session,
                first_prompt,
                id,
                args.repeat,
                || bar.inc(1),
            )?)
        }
        None => None,
    };
    bar.set_message("multi-path decode");
    let paths = engine_paths::measure(
        &mut session,
        &gpu,
        first_prompt,
        args.gen_tokens,
        &ns,
        args.repeat,
        &kestrel::Sampling::greedy(),
        || bar.inc(1),
    )?;
    let rss_bytes = sysmem::peak_rss_bytes();
    let peak_gpu_bytes = gpu.stats().allocated_bytes;
    drop(session);

    bar.set_message("GPU roofline probe");
    let probe = kestrel_kernels::measure_read_bandwidth(&gpu).context("GPU roofline probe")?;
    bar.inc(1);
    let host = if is_cpu {
        bar.set_message("host read bandwidth");
        let bytes = sysmem::available_bytes()
            .map_or(HOST_PROBE_BYTES, |a| (a / 4).min(HOST_PROBE_BYTES))
            .max(HOST_PROBE_MIN_BYTES);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let h =
            host_bw::measure(bytes, threads, HOST_PROBE_PASSES).context("host read bandwidth")?;
        bar.inc(1);
        Some(h)
    } else {
        None
    };
    bar.finish_and_clear();

    let bytes_per_token = model_bytes::decode_bytes_per_token(&file, &cfg)?;
    let (roofline_gb_s, roofline_source) = match &host {
        Some(h) => (h.gb_s, "host_read"),
        None => (probe.best_gb_s, "gpu_probe"),
    };
    let decode_tok_s = decode.tok_s.median;
    let achieved_gb_s = bytes_per_token as f64 * decode_tok_s / 1e9;
    let lora_ratios: Vec<f64> = lora_pairs
        .as_ref()
        .map(|(off, on)| {
            on.step_runs
                .iter()
                .zip(&off.step_runs)
                .map(|(on, off)| on / off)
                .collect()
        })
        .unwrap_or_default();
    let lora_info = match lora {
        Some(id) => {
            let a = engine.adapter(id)?;
            Some((a.name.clone(), a.rank, a.bytes))
        }
        None => None,
    };
    let mut report = Report {
        schema_version: 1,
        prefill_tok_s: prefill[0].tok_s.median,
        ttft_ms: prefill[0].ttft_ms.median,
        decode_tok_s,
        decode_step_ms: decode.step_ms.median,
        bytes_per_token,
        achieved_gb_s,
        roofline_gb_s,
        roofline_source,
        roofline_fraction: achieved_gb_s / roofline_gb_s,
        gpu_probe_gb_s: probe.best_gb_s,
        gpu_probe_variant: probe.variant.to_string(),
        host_read_gb_s: host.map(|h| h.gb_s),
        host_read_threads: host.map(|h| h.threads),
        dispatches_per_token: decode.dispatches_per_token,
        dispatches_per_layer: decode.dispatches_per_token / cfg.num_hidden_layers.max(1) as f64,
        submits_per_token: decode.submits_per_token,
        peak_gpu_bytes,
        gpu_bytes: GpuBytes {
            model: after_model,
            adapter: after_adapter - after_model,
            session: after_session - after_adapter,
            runs: peak_gpu_bytes - after_session,
        },
        rss_bytes,
        path_step_ratio: paths.iter().map(|p| (p.n, p.ratio)).collect(),
        // N = 1 from the single-path decode runs, the other N from the lockstep runs.
        readback_bytes_per_step: [(1, decode.readback_bytes_per_token)]
            .into_iter()
            .chain(
                paths
                    .iter()
                    .filter(|p| p.n > 1)
                    .map(|p| (p.n, p.readback_bytes_per_step)),
            )
            .collect(),
        path_step_source: "engine",
        // Median of per-round ratios: the base and adapter runs of a round are adjacent in time,
        // so a noisy machine's slow drift cancels (a ratio of medians does not).
        lora_step_ratio: stats::Summary::of(&lora_ratios).map(|s| s.median),
        lora_bytes_ratio: lora_info
            .as_ref()
            .map(|a| a.2 as f64 / engine.weight_bytes() as f64),
        lora: lora_info
            .zip(lora_decode.as_ref())
            .zip(lora_pairs.as_ref())
            .map(|(((name, rank, bytes), d), (off, on))| LoraRow {
                name,
                rank,
                bytes,
                decode: DecodeRow::from(d),
                dispatches_per_token: d.dispatches_per_token,
                rounds: args.lora_rounds,
                steps_per_run: LORA_PAIR_TOKENS - 1,
                off_step_ms: off.step_ms,
                on_step_ms: on.step_ms,
                step_ratios: lora_ratios.clone(),
            }),
        ttft_reasoning_shared_ms: reasoning_ttft.as_ref().map(|r| r.shared_ms.median),
        ttft_reasoning_reencode_ms: reasoning_ttft.as_ref().map(|r| r.reencode_ms.median),
        reasoning_ttft: reasoning_ttft.as_ref().map(|r| ReasoningTtftRow {
            prompt_tokens: first_prompt.len(),
            shared_ms: r.shared_ms,
            reencode_ms: r.reencode_ms,
        }),
        model: ModelInfo::of(&args.model, &engine),
        device: DeviceInfo::of(&engine),
        settings: Settings {
            prompt_tokens: args.prompt_tokens.clone(),
            gen_tokens: args.gen_tokens,
            repeat: args.repeat,
            lora_rounds: args.lora_rounds,
            paths: ns,
            adapter: args.adapter.as_ref().map(|a| a.display().to_string()),
        },
        prefill: prefill.iter().map(PrefillRow::from).collect(),
        decode: DecodeRow::from(&decode),
        paths: paths
            .iter()
            .map(|p| PathRow::from(p, bytes_per_token))
            .collect(),
        probe_variants: probe
            .variants
            .iter()
            .map(|v| ProbeVariant {
                variant: v.variant.to_string(),
                gb_s: v.gb_s,
                checksum_ok: v.checksum_ok,
            })
            .collect(),
        targets: Vec::new(),
    };
    report.targets = targets::check(&report);
    emit(args.json, &report.table(), &report)
}

/// Prints a report: the table on stdout, or with `--json` the JSON on stdout and the table on
/// stderr (so a person watching still sees it).
fn emit(json: bool, table: &str, report: &impl serde::Serialize) -> anyhow::Result<()> {
    if json {
        eprint!("{table}");
        writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(report)?
        )?;
    } else {
        write!(std::io::stdout(), "{table}")?;
    }
    Ok(())
}
