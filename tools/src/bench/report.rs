//! The bench report: one struct serialised as the stable `--json` schema, and its table.
//!
//! JSON schema (version 1). Top-level numbers: `prefill_tok_s`, `ttft_ms` (medians at the first
//! `--prompt-tokens` length), `decode_tok_s`, `decode_step_ms` (medians, decoding after that
//! prompt), `bytes_per_token` (weight bytes a decode step reads), `achieved_gb_s`
//! (= bytes_per_token × decode_tok_s), `roofline_gb_s` (host read bandwidth on a CPU adapter, the
//! best verified GPU probe kernel otherwise; `roofline_source` says which), `roofline_fraction`,
//! `gpu_probe_gb_s`, `host_read_gb_s` (CPU adapters only, else null), `dispatches_per_token`,
//! `dispatches_per_layer`, `submits_per_token`, `peak_gpu_bytes` (bytes allocated through the
//! `Gpu`: weights + KV cache + scratch; an upper bound, frees are not subtracted; `gpu_bytes`
//! splits it by phase: model load, adapter load, session (KV + scratch), runs), `rss_bytes`
//! (peak resident set of the process before the roofline probes; null without /proc),
//! `path_step_ratio` (object keyed by N: lockstep decode step of N paths over one shared prompt /
//! step of 1 path; `path_step_source` = `engine`: `Session::generate_paths`),
//! `readback_bytes_per_step` (object keyed by N: bytes a decode step copies back to the host,
//! N = 1 from the single-path decode runs, other N from the lockstep runs), and, only when `--adapter`
//! was given, `lora_step_ratio` (median over `--lora-rounds` paired rounds of decode step adapter
//! on / off, 2 steps per run), `lora_bytes_ratio`
//! (adapter / base weight bytes), `ttft_reasoning_shared_ms` / `ttft_reasoning_reencode_ms` (time
//! to the first reasoning token after a chat request on the same prompt, with KV sharing / with
//! the prompt re-encoded by the adapter) and the `lora` (its `decode` row from the `--repeat`
//! runs; `rounds`, `steps_per_run`, `off_step_ms` / `on_step_ms` and `step_ratios`, one per
//! round, from the paired rounds) and
//! `reasoning_ttft` detail objects. Detail objects: `model`, `device`,
//! `settings`, `prefill` (one row per length), `decode`, `paths`, `probe_variants`, `targets`
//! (the performance targets with `met` flags).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::engine_paths::PathStep;
use super::engine_runs::{DecodeResult, PrefillResult};
use super::stats::Summary;
use super::targets::Target;

#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub arch: String,
    pub layers: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    /// Bytes of weights on the GPU (`Engine::weight_bytes`).
    pub weight_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct DeviceInfo {
    /// `Gpu::adapter_description`: name, backend, device type, driver.
    pub adapter: String,
    pub name: String,
    pub device_type: String,
    pub backend: String,
    pub driver: String,
    pub shader_f16: bool,
}

impl ModelInfo {
    /// The loaded model at `path`.
    pub fn of(path: &std::path::Path, engine: &kestrel::Engine) -> ModelInfo {
        let cfg = engine.config();
        ModelInfo {
            path: path.display().to_string(),
            arch: format!("{:?}", cfg.arch).to_lowercase(),
            layers: cfg.num_hidden_layers,
            hidden_size: cfg.hidden_size,
            intermediate_size: cfg.intermediate_size,
            vocab_size: cfg.vocab_size,
            weight_bytes: engine.weight_bytes(),
        }
    }
}

impl DeviceInfo {
    /// The GPU adapter `engine` runs on.
    pub fn of(engine: &kestrel::Engine) -> DeviceInfo {
        let gpu = engine.gpu();
        let info = gpu.adapter_info();
        DeviceInfo {
            adapter: engine.adapter_description(),
            name: info.name.clone(),
            device_type: format!("{:?}", info.device_type),
            backend: format!("{:?}", info.backend),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            shader_f16: gpu.has_f16(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub prompt_tokens: Vec<usize>,
    pub gen_tokens: usize,
    pub repeat: usize,
    pub lora_rounds: usize,
    pub paths: Vec<usize>,
    pub adapter: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PrefillRow {
    pub prompt_tokens: usize,
    pub tok_s: Summary,
    pub ttft_ms: Summary,
}

#[derive(Debug, Serialize)]
pub struct DecodeRow {
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub tok_s: Summary,
    pub step_ms: Summary,
}

#[derive(Debug, Serialize)]
pub struct LoraRow {
    pub name: String,
    pub rank: u32,
    /// Bytes of A and B on the GPU.
    pub bytes: u64,
    pub decode: DecodeRow,
    pub dispatches_per_token: f64,
    /// Paired rounds behind `step_ratios`, and timed decode steps per run in them.
    pub rounds: usize,
    pub steps_per_run: usize,
    /// Decode step of the paired rounds' runs with the adapter off / on.
    pub off_step_ms: Summary,
    pub on_step_ms: Summary,
    /// Step (on) / step (off) per paired round, in run order; `lora_step_ratio` is their median.
    pub step_ratios: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct ReasoningTtftRow {
    pub prompt_tokens: usize,
    pub shared_ms: Summary,
    pub reencode_ms: Summary,
}

/// Where `peak_gpu_bytes` went: the `Gpu` allocation counter read between the phases.
#[derive(Debug, Serialize)]
pub struct GpuBytes {
    /// `Engine::load`: weights (+ the runtime's own small buffers).
    pub model: u64,
    /// `Engine::load_adapter` (0 without `--adapter`).
    pub adapter: u64,
    /// `Engine::session`: KV cache + scratch.
    pub session: u64,
    /// Allocated during the runs (growth, uniform arenas, ...).
    pub runs: u64,
}

#[derive(Debug, Serialize)]
pub struct PathRow {
    pub n: usize,
    /// One lockstep step of all N paths.
    pub step_ms: Summary,
    /// `median step(N) / median step(1)`.
    pub ratio: f64,
    /// Tokens per second summed over the paths.
    pub tok_s: f64,
    /// Weight bytes per step (read once for all paths) / median step time.
    pub gb_s: f64,
}

#[derive(Debug, Serialize)]
pub struct ProbeVariant {
    pub variant: String,
    pub gb_s: f64,
    pub checksum_ok: bool,
}

/// Everything `kestrel bench` measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub prefill_tok_s: f64,
    pub ttft_ms: f64,
    pub decode_tok_s: f64,
    pub decode_step_ms: f64,
    pub bytes_per_token: u64,
    pub achieved_gb_s: f64,
    pub roofline_gb_s: f64,
    pub roofline_source: &'static str,
    pub roofline_fraction: f64,
    pub gpu_probe_gb_s: f64,
    pub gpu_probe_variant: String,
    pub host_read_gb_s: Option<f64>,
    pub host_read_threads: Option<usize>,
    pub dispatches_per_token: f64,
    pub dispatches_per_layer: f64,
    pub submits_per_token: f64,
    pub peak_gpu_bytes: u64,
    pub gpu_bytes: GpuBytes,
    pub rss_bytes: Option<u64>,
    pub path_step_ratio: BTreeMap<usize, f64>,
    pub path_step_source: &'static str,
    pub readback_bytes_per_step: BTreeMap<usize, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora_step_ratio: Option<f64>,
    /// Adapter bytes / base weight bytes (with `lora_step_ratio`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora_bytes_ratio: Option<f64>,
    /// The adapter-on decode runs (with `--adapter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraRow>,
    /// Reasoning TTFT after a chat request, KV shared (with `--adapter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_reasoning_shared_ms: Option<f64>,
    /// Reasoning TTFT after a chat request, prompt re-encoded with the adapter (with `--adapter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_reasoning_reencode_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_ttft: Option<ReasoningTtftRow>,
    pub model: ModelInfo,
    pub device: DeviceInfo,
    pub settings: Settings,
    pub prefill: Vec<PrefillRow>,
    pub decode: DecodeRow,
    pub paths: Vec<PathRow>,
    pub probe_variants: Vec<ProbeVariant>,
    /// The performance targets (see `targets`).
    pub targets: Vec<Target>,
}

impl PrefillRow {
    pub fn from(r: &PrefillResult) -> Self {
        PrefillRow {
            prompt_tokens: r.prompt_tokens,
            tok_s: r.tok_s,
            ttft_ms: r.ttft_ms,
        }
    }
}

impl DecodeRow {
    pub fn from(r: &DecodeResult) -> Self {
        DecodeRow {
            prompt_tokens: r.prompt_tokens,
            gen_tokens: r.gen_tokens,
            tok_s: r.tok_s,
            step_ms: r.step_ms,
        }
    }
}

impl PathRow {
    pub fn from(p: &PathStep, bytes_per_step: u64) -> Self {
        PathRow {
            n: p.n,
            step_ms: p.step_ms,
            ratio: p.ratio,
            tok_s: p.tok_s,
            gb_s: bytes_per_step as f64 / (p.step_ms.median * 1e-3) / 1e9,
        }
    }
}

/// `x` to 3 decimals without trailing zeros (10, 0.25, 1.056).
fn short(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl Report {
    /// The human-readable table (medians ± half the min–max range over the repeats).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let m = &self.model;
        let _ = writeln!(
            s,
            "model    {} ({}, {} layers, hidden {}, mlp {}, vocab {}, weights {})",
            m.path,
            m.arch,
            m.layers,
            m.hidden_size,
            m.intermediate_size,
            m.vocab_size,
            mb(m.weight_bytes)
        );
        let _ = writeln!(
            s,
            "adapter  {} (shader-f16: {})",
            self.device.adapter, self.device.shader_f16
        );
        let _ = writeln!(s, "driver   {}", self.device.driver);
        let _ = writeln!(
            s,
            "lora     {}",
            self.settings
                .adapter
                .as_deref()
                .unwrap_or("none (base model)")
        );
        let _ = writeln!(
            s,
            "repeats  {} (median ±half-range)\n",
            self.settings.repeat
        );
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, "{k:<32} {v}");
        };
        for p in &self.prefill {
            row(
                &mut s,
                &format!("prefill {} tokens", p.prompt_tokens),
                p.tok_s.show(1, "tok/s"),
            );
            row(
                &mut s,
                &format!("time to first token ({})", p.prompt_tokens),
                p.ttft_ms.show(1, "ms"),
            );
        }
        let d = &self.decode;
        row(
            &mut s,
            &format!("decode ({} after {})", d.gen_tokens, d.prompt_tokens),
            format!(
                "{}   ({})",
                d.tok_s.show(2, "tok/s"),
                d.step_ms.show(1, "ms/step")
            ),
        );
        row(&mut s, "weight bytes / token", mb(self.bytes_per_token));
        row(
            &mut s,
            "achieved bandwidth",
            format!("{:.2} GB/s", self.achieved_gb_s),
        );
        row(
            &mut s,
            &format!("roofline ({})", self.roofline_source),
            format!(
                "{:.2} GB/s   fraction {:.3}",
                self.roofline_gb_s, self.roofline_fraction
            ),
        );
        if let (Some(h), Some(t)) = (self.host_read_gb_s, self.host_read_threads) {
            row(
                &mut s,
                "host read bandwidth",
                format!("{h:.2} GB/s ({t} threads)"),
            );
        }
        row(
            &mut s,
            "GPU probe (best verified kernel)",
            format!(
                "{:.2} GB/s ({})",
                self.gpu_probe_gb_s, self.gpu_probe_variant
            ),
        );
        row(
            &mut s,
            "dispatches / token",
            format!(
                "{:.1} ({:.2} / layer), submits / token {:.1}",
                self.dispatches_per_token, self.dispatches_per_layer, self.submits_per_token
            ),
        );
        row(
            &mut s,
            "readback / decode step",
            self.readback_bytes_per_step
                .iter()
                .map(|(n, b)| format!("N = {n}: {}", mb(*b as u64)))
                .collect::<Vec<_>>()
                .join(", "),
        );
        row(
            &mut s,
            "GPU bytes allocated (peak bound)",
            format!(
                "{}   (model {}, adapter {}, session {}, runs {})",
                mb(self.peak_gpu_bytes),
                mb(self.gpu_bytes.model),
                mb(self.gpu_bytes.adapter),
                mb(self.gpu_bytes.session),
                mb(self.gpu_bytes.runs)
            ),
        );
        row(
            &mut s,
            "process peak RSS",
            self.rss_bytes.map_or("n/a".into(), mb),
        );
        let _ = writeln!(
            s,
            "\nN-path decode step ({}, shared prompt)",
            self.path_step_source
        );
        for p in &self.paths {
            row(
                &mut s,
                &format!("  N = {}", p.n),
                format!(
                    "{}   ×{:.2} of N=1   {:.2} tok/s total   {:.2} GB/s",
                    p.step_ms.show(1, "ms"),
                    p.ratio,
                    p.tok_s,
                    p.gb_s
                ),
            );
        }
        match (&self.lora, self.lora_step_ratio, self.lora_bytes_ratio) {
            (Some(l), Some(r), Some(b)) => {
                let d = &l.decode;
                row(
                    &mut s,
                    &format!("LoRA {} (rank {}) decode", l.name, l.rank),
                    format!(
                        "{}   ({})",
                        d.tok_s.show(2, "tok/s"),
                        d.step_ms.show(1, "ms/step")
                    ),
                );
                row(
                    &mut s,
                    "LoRA on / off step",
                    format!(
                        "×{r:.3}   (median of {} paired rounds of {} steps; adapter / base bytes \
                         {b:.4}, limit ×{:.3}; {:.1} dispatches / token)",
                        l.rounds,
                        l.steps_per_run,
                        1.0 + 1.1 * b,
                        l.dispatches_per_token
                    ),
                );
                if let Some(t) = &self.reasoning_ttft {
                    row(
                        &mut s,
                        &format!("reasoning TTFT ({} after chat)", t.prompt_tokens),
                        format!(
                            "shared KV {}   re-encode {}   (saves ×{:.1})",
                            t.shared_ms.show(1, "ms"),
                            t.reencode_ms.show(1, "ms"),
                            t.reencode_ms.median / t.shared_ms.median
                        ),
                    );
                }
            }
            _ => row(
                &mut s,
                "LoRA on / off step",
                "n/a (no --adapter given)".into(),
            ),
        }
        let _ = writeln!(
            s,
            "\ntargets (the project's decode, memory and LoRA targets; stated for the Qwen2.5-0.5B shape on lavapipe)"
        );
        for t in &self.targets {
            let mark = if t.met { "met" } else { "NOT met" };
            row(
                &mut s,
                &format!("  {}", t.metric),
                format!("{:.3} {} {}   {mark}", t.value, t.relation, short(t.bound)),
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn bounds_print_without_trailing_zeros() {
        assert_eq!(short(10.0), "10");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(1.0559552178276146), "1.056");
    }
}
