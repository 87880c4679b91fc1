//! `kestrel bench --backend noop`: the engine's host cost per step, measured on wgpu's noop
//! backend (`GpuOptions::noop`).
//!
//! Contract:
//! - The noop backend runs every host-side step (validation, bind groups, recording, submission,
//!   buffer mapping, readback copies, sampling) and executes no kernel, so a step's wall time is
//!   what the host spends on it: the floor under a decode step on any GPU. It reports a discrete
//!   GPU, so the engine takes its GPU variants (workgroup shapes, storage-buffer inputs).
//! - `host_us_per_step`, keyed by N: N = 1 decodes greedily through `Session::generate` (the
//!   single-path route, the prompt's prefix segment); every other N of `--paths` decodes N
//!   paths in lockstep through `Session::generate_paths` at temperature 0.7, as reasoning paths
//!   sample. Both are medians of `--repeat` runs of `--gen-tokens` tokens after the first
//!   `--prompt-tokens` prompt (the engine's decode time / decode steps, prefill excluded).
//! - `host_us_per_prefill_chunk`: the prefill time of that prompt from an empty cache, divided by
//!   its chunks of `EngineOptions::prefill_chunk` (128) tokens; it includes the last row's
//!   logits readback and the first token's sampling.
//! - `dispatches_per_step`, `us_per_dispatch` (= host µs per step / dispatches per step) and
//!   `readback_bytes_per_step`, keyed by N like `host_us_per_step`.
//! - Kernels do not run, so the device-side token choice costs nothing here; what it costs the
//!   host (recording its dispatch, reading back 8 bytes a path) is counted. With
//!   `--pick-on-cpu` the logits read back are all zero, which makes the CPU sampler's sort
//!   cheaper than on real logits, so those figures are a lower bound.
//! - No GPU roofline probe and no host bandwidth: nothing executes, so there is no bandwidth to
//!   measure; the table says so. `--adapter` is refused (this measures the base model).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context};
use kestrel::{Engine, EngineOptions, Sampling};
use kestrel_kernels::GpuOptions;
use serde::Serialize;

use super::report::{DeviceInfo, ModelInfo};
use super::stats::Summary;
use super::targets::{at_most, Target};
use super::{engine_paths, engine_runs, Args};

/// Temperature of the N > 1 runs: what reasoning paths sample with.
const PATH_TEMPERATURE: f32 = 0.7;

/// One N's host cost.
#[derive(Debug, Serialize)]
pub struct NoopRow {
    pub n: usize,
    /// `greedy` or `temperature 0.7`.
    pub sampling: String,
    /// Host microseconds per decode step (all N paths).
    pub host_us: Summary,
    pub dispatches_per_step: f64,
    pub us_per_dispatch: f64,
    pub readback_bytes_per_step: f64,
}

/// The `--backend noop --json` report (schema version 1; keys as in the module contract).
#[derive(Debug, Serialize)]
pub struct NoopReport {
    pub schema_version: u32,
    pub backend: &'static str,
    pub host_us_per_step: BTreeMap<usize, f64>,
    pub host_us_per_prefill_chunk: f64,
    pub prefill_chunk_tokens: usize,
    pub dispatches_per_step: BTreeMap<usize, f64>,
    pub us_per_dispatch: BTreeMap<usize, f64>,
    pub readback_bytes_per_step: BTreeMap<usize, f64>,
    /// Why there is no roofline.
    pub roofline: &'static str,
    pub model: ModelInfo,
    pub device: DeviceInfo,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub repeat: usize,
    pub steps: Vec<NoopRow>,
    pub prefill_us: Summary,
    /// The host-cost targets (stated for the Qwen2.5-0.5B shape) that were measured.
    pub targets: Vec<Target>,
}

const ROOFLINE_SKIPPED: &str =
    "skipped: the noop backend executes no kernel, so there is no bandwidth to measure";

pub fn run(args: &Args, ns: &[usize]) -> anyhow::Result<NoopReport> {
    if args.adapter.is_some() {
        bail!("--backend noop measures the base model's host cost; drop --adapter");
    }
    let env = crate::common::env_options()?;
    let options = EngineOptions {
        gpu: GpuOptions {
            noop: true,
            ..env.gpu
        },
        pick_on_cpu: args.pick_on_cpu,
        ..env
    };
    let chunk = options.prefill_chunk;
    let engine = Engine::load(&args.model, options)
        .with_context(|| format!("loading {} on the noop backend", args.model.display()))?;
    let cfg = engine.config().clone();
    let gpu = engine.gpu().clone();
    let prompt_len = args.prompt_tokens[0];
    if prompt_len + args.gen_tokens > engine.max_context() {
        bail!(
            "prompt {prompt_len} + {} generated tokens exceed the context window of {}",
            args.gen_tokens,
            engine.max_context()
        );
    }
    eprintln!("adapter: {}", engine.adapter_description());
    eprintln!("GPU roofline probe {ROOFLINE_SKIPPED}");
    let prompt = engine_runs::synthetic_prompt(prompt_len, cfg.vocab_size);
    let mut session = engine.session().context("creating a session")?;
    engine_runs::warm_up(&mut session, &prompt, &[None])?;

    let prefill = engine_runs::prefill(&mut session, &prompt, args.repeat, || {})?;
    let chunks = prompt_len.div_ceil(chunk) as f64;
    // tok/s → µs per chunk: prompt / rate is the prefill time.
    let per_chunk = |tok_s: f64| prompt_len as f64 / tok_s * 1e6 / chunks;
    let prefill_us = Summary::of(&[
        per_chunk(prefill.tok_s.median),
        per_chunk(prefill.tok_s.min),
        per_chunk(prefill.tok_s.max),
    ])
    .context("no finite prefill time")?;

    let mut steps = Vec::new();
    let greedy = engine_runs::decode(
        &mut session,
        &gpu,
        &prompt,
        args.gen_tokens,
        args.repeat,
        &[None],
        || {},
    )?
    .into_iter()
    .next()
    .context("no decode result")?;
    let us = scale(greedy.step_ms, 1e3);
    steps.push(NoopRow {
        n: 1,
        sampling: "greedy".into(),
        us_per_dispatch: us.median / greedy.dispatches_per_token,
        host_us: us,
        dispatches_per_step: greedy.dispatches_per_token,
        readback_bytes_per_step: greedy.readback_bytes_per_token,
    });
    let multi: Vec<usize> = ns.iter().copied().filter(|&n| n > 1).collect();
    if !multi.is_empty() {
        let sampling = Sampling {
            temperature: PATH_TEMPERATURE,
            ..Sampling::default()
        };
        let paths = engine_paths::measure(
            &mut session,
            &gpu,
            &prompt,
            args.gen_tokens,
            &multi,
            args.repeat,
            &sampling,
            || {},
        )?;
        for p in paths {
            let us = scale(p.step_ms, 1e3);
            steps.push(NoopRow {
                n: p.n,
                sampling: format!("temperature {PATH_TEMPERATURE}"),
                us_per_dispatch: us.median / p.dispatches_per_step,
                host_us: us,
                dispatches_per_step: p.dispatches_per_step,
                readback_bytes_per_step: p.readback_bytes_per_step,
            });
        }
    }
    let key = |f: fn(&NoopRow) -> f64| steps.iter().map(|r| (r.n, f(r))).collect();
    let host_us_per_step: BTreeMap<usize, f64> = key(|r| r.host_us.median);
    let targets = [
        (1, "host_us_per_step.1", 150.0),
        (8, "host_us_per_step.8", 250.0),
    ]
    .into_iter()
    .filter_map(|(n, metric, bound)| host_us_per_step.get(&n).map(|&v| at_most(metric, v, bound)))
    .collect();
    Ok(NoopReport {
        schema_version: 1,
        backend: "noop",
        host_us_per_step,
        host_us_per_prefill_chunk: prefill_us.median,
        prefill_chunk_tokens: chunk,
        dispatches_per_step: key(|r| r.dispatches_per_step),
        us_per_dispatch: key(|r| r.us_per_dispatch),
        readback_bytes_per_step: key(|r| r.readback_bytes_per_step),
        roofline: ROOFLINE_SKIPPED,
        model: ModelInfo::of(&args.model, &engine),
        device: DeviceInfo::of(&engine),
        prompt_tokens: prompt_len,
        gen_tokens: args.gen_tokens,
        repeat: args.repeat,
        steps,
        prefill_us,
        targets,
    })
}

/// `s` with every figure multiplied by `k` (a unit change).
fn scale(s: Summary, k: f64) -> Summary {
    Summary {
        median: s.median * k,
        min: s.min * k,
        max: s.max * k,
        ..s
    }
}

impl NoopReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let m = &self.model;
        let _ = writeln!(
            s,
            "model    {} ({}, {} layers, hidden {}, vocab {})",
            m.path, m.arch, m.layers, m.hidden_size, m.vocab_size
        );
        let _ = writeln!(
            s,
            "adapter  {} (shader-f16: {})",
            self.device.adapter, self.device.shader_f16
        );
        let _ = writeln!(
            s,
            "backend  noop: host work only, no kernel executes (figures are host cost per step)"
        );
        let _ = writeln!(s, "repeats  {} (median ±half-range)\n", self.repeat);
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, "{k:<32} {v}");
        };
        row(
            &mut s,
            &format!(
                "host / prefill chunk ({} tok)",
                self.prefill_chunk_tokens.min(self.prompt_tokens)
            ),
            self.prefill_us.show(0, "µs"),
        );
        for r in &self.steps {
            row(
                &mut s,
                &format!("host / decode step, N = {}", r.n),
                format!(
                    "{}   ({}; {:.0} dispatches, {:.2} µs / dispatch; readback {:.0} B)",
                    r.host_us.show(0, "µs"),
                    r.sampling,
                    r.dispatches_per_step,
                    r.us_per_dispatch,
                    r.readback_bytes_per_step
                ),
            );
        }
        row(&mut s, "GPU roofline probe", self.roofline.to_string());
        let _ = writeln!(
            s,
            "\ntargets (host cost per decode step; stated for the Qwen2.5-0.5B shape)"
        );
        for t in &self.targets {
            let mark = if t.met { "met" } else { "NOT met" };
            row(
                &mut s,
                &format!("  {}", t.metric),
                format!("{:.0} µs {} {} µs   {mark}", t.value, t.relation, t.bound),
            );
        }
        s
    }
}
