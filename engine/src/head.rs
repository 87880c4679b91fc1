//! Pooled linear heads over the final hidden states: the switcher (chat | reasoning) and the
//! verifier (a path's score).
//!
//! A head `.kst` (`kestrel convert head_dir --base model.kst`) holds `weight` `[C, hidden]`, `bias`
//! `[C]` and `{kind, pooling, labels}`; it records its base model's header hash and is refused on
//! another base. The hidden states a head reads are the final block's output after the model's
//! final RMSNorm (`model.norm`, what transformers returns as `output_hidden_states[-1]`).
//!
//! How the engine evaluates them: all loaded heads are one `[ΣC, hidden]` matrix, and every token
//! a session runs gets its per-token logits `W · norm(h_t) + bias` (one `pooled_head_f32`
//! dispatch per prefill chunk or decode step, after the blocks; a multi-path step runs it only
//! with a verifier loaded, the one head that reads path tokens). Pooling is then exact arithmetic
//! on those rows: "last" takes the last token's row, "mean" averages the rows, which equals
//! `W · mean_t(norm(h_t)) + bias` because the head is linear. Per-token rows are what make heads
//! work with the session's prompt cache: a reused prompt prefix keeps its rows.

use std::path::Path;

use kestrel_formats::{Kind, KstFile, ModelConfig};
use kestrel_kernels::Gpu;

use crate::adapter::{check_base, json_strings};
use crate::error::{EngineError, Result};

/// Which head a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeadKind {
    /// Mean-pooled prompt hidden states → chat | reasoning (labels `chat`, `reasoning`).
    Switcher,
    /// A reasoning path's final hidden state → one score (a logit; `sigmoid` gives a probability).
    Verifier,
    /// Not a file: the identity head of [`crate::Engine::enable_features`], whose per-token rows
    /// are the final-normed hidden states themselves (the features heads are trained on).
    Features,
}

/// How a head pools the per-token hidden states of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadPooling {
    /// The mean over every token of the sequence.
    Mean,
    /// The last token.
    Last,
}

/// One loaded head (host copy; the GPU holds all heads as one matrix, see [`Heads`]).
#[derive(Debug, Clone)]
pub struct HeadInfo {
    pub name: String,
    pub kind: HeadKind,
    pub pooling: HeadPooling,
    pub labels: Vec<String>,
    /// The decision threshold on the positive class's probability (the switcher's
    /// `reasoning`, the verifier's `sigmoid(score)`), from the file's optional `threshold`;
    /// `None`: the switcher picks the label with the highest logit.
    pub threshold: Option<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl HeadInfo {
    pub(crate) fn load(path: &Path, cfg: &ModelConfig, base_hash: &str) -> Result<HeadInfo> {
        let file = KstFile::open(path)?;
        let bad = |what: String| EngineError::Head(format!("{}: {what}", path.display()));
        if file.kind() != Kind::Head {
            return Err(bad(format!("not a head file (kind {:?})", file.kind())));
        }
        check_base(&file, path, base_hash)?;
        let meta = file
            .meta("head")
            .ok_or_else(|| bad("no `head` section".into()))?;
        let kind = match meta["kind"].as_str() {
            Some("switcher") => HeadKind::Switcher,
            Some("verifier") => HeadKind::Verifier,
            k => return Err(bad(format!("unknown head kind {k:?}"))),
        };
        let pooling = match meta["pooling"].as_str() {
            Some("mean") => HeadPooling::Mean,
            Some("last") => HeadPooling::Last,
            p => return Err(bad(format!("unknown pooling {p:?}"))),
        };
        let labels = json_strings(&meta["labels"]);
        let c = labels.len();
        match kind {
            HeadKind::Switcher => {
                let mut sorted: Vec<&str> = labels.iter().map(String::as_str).collect();
                sorted.sort_unstable();
                if sorted != ["chat", "reasoning"] {
                    return Err(bad(format!(
                        "a switcher's labels are `chat` and `reasoning`, found {labels:?}"
                    )));
                }
            }
            HeadKind::Verifier if c != 1 => {
                return Err(bad(format!(
                    "a verifier has one output (the score), found {c} labels"
                )))
            }
            HeadKind::Verifier => {}
            HeadKind::Features => return Err(bad("a head file cannot hold features".into())),
        }
        let threshold = match &meta["threshold"] {
            serde_json::Value::Null => None,
            v => match v.as_f64() {
                Some(t) if t > 0.0 && t < 1.0 => Some(t as f32),
                _ => return Err(bad(format!("threshold {v} is not a probability in (0, 1)"))),
            },
        };
        let hidden = cfg.hidden_size;
        // The sizes the header states must be the ones the labels and the model give.
        for (key, want) in [("num_classes", c), ("hidden_size", hidden)] {
            let v = &meta[key];
            if !v.is_null() && v.as_u64() != Some(want as u64) {
                return Err(bad(format!("`{key}` is {v}, expected {want}")));
            }
        }
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = file.tensor(name)?;
            if t.shape != shape {
                return Err(bad(format!(
                    "{name}: shape {:?}, expected {shape:?}",
                    t.shape
                )));
            }
            let v = t.to_f32_vec()?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!("{name}: non-finite values")));
            }
            Ok(v)
        };
        let weight = tensor("weight", &[c, hidden])?;
        let bias = tensor("bias", &[c])?;
        Ok(HeadInfo {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kind,
            pooling,
            labels,
            threshold,
            weight,
            bias,
        })
    }

    /// The identity head over `hidden` features (`W = I`, `b = 0`): each per-token row is the
    /// token's final-normed hidden state, exactly (a dot product with one 1 and zeros), pooled
    /// by `pooling` like any head's rows.
    pub(crate) fn features(hidden: usize, pooling: HeadPooling) -> HeadInfo {
        let mut weight = vec![0.0; hidden * hidden];
        for i in 0..hidden {
            weight[i * hidden + i] = 1.0;
        }
        HeadInfo {
            name: "features".into(),
            kind: HeadKind::Features,
            pooling,
            labels: (0..hidden).map(|i| format!("h{i}")).collect(),
            threshold: None,
            weight,
            bias: vec![0.0; hidden],
        }
    }

    /// Bytes of the head's weight matrix on the GPU.
    pub(crate) fn weight_bytes(&self) -> u64 {
        self.weight.len() as u64 * 4
    }

    /// Number of outputs.
    pub fn classes(&self) -> usize {
        self.labels.len()
    }
}

/// The loaded heads (at most one of each kind) and their concatenated GPU matrix.
pub(crate) struct Heads {
    pub list: Vec<HeadInfo>,
    /// `[ΣC, hidden]` f32, heads' weights concatenated by rows in `list` order.
    pub weight: wgpu::Buffer,
    /// `[ΣC]` f32.
    pub bias: wgpu::Buffer,
    /// ΣC: the width of a per-token row.
    pub width: usize,
}

impl Heads {
    /// Upload `list` as one matrix.
    pub fn upload(gpu: &Gpu, list: Vec<HeadInfo>) -> Result<Heads> {
        let weight: Vec<f32> = list.iter().flat_map(|h| h.weight.iter().copied()).collect();
        let bias: Vec<f32> = list.iter().flat_map(|h| h.bias.iter().copied()).collect();
        Ok(Heads {
            width: bias.len(),
            weight: gpu.upload("heads.weight", bytemuck::cast_slice(&weight))?,
            bias: gpu.upload("heads.bias", bytemuck::cast_slice(&bias))?,
            list,
        })
    }

    /// The head of `kind` and its first column in a per-token row.
    pub fn get(&self, kind: HeadKind) -> Option<(&HeadInfo, usize)> {
        let mut col = 0;
        for h in &self.list {
            if h.kind == kind {
                return Some((h, col));
            }
            col += h.classes();
        }
        None
    }
}

/// A head's pooling over tokens, one row of its outputs at a time (mean: f64 sums in token
/// order; last: the latest row).
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolAcc {
    sum: Vec<f64>,
    last: Vec<f32>,
    n: usize,
}

impl PoolAcc {
    /// The pooling of columns `cols` of the `width`-wide per-token `rows`, in token order.
    pub fn over(rows: &[f32], width: usize, cols: std::ops::Range<usize>) -> Self {
        let mut acc = Self::default();
        for r in rows.chunks_exact(width) {
            acc.push(&r[cols.clone()]);
        }
        acc
    }

    pub fn push(&mut self, row: &[f32]) {
        if self.sum.is_empty() {
            self.sum = vec![0.0; row.len()];
        }
        for (s, v) in self.sum.iter_mut().zip(row) {
            *s += f64::from(*v);
        }
        self.last.clear();
        self.last.extend_from_slice(row);
        self.n += 1;
    }

    /// The pooled outputs; `None` before any row.
    pub fn finish(&self, pooling: HeadPooling) -> Option<Vec<f32>> {
        if self.n == 0 {
            return None;
        }
        Some(match pooling {
            HeadPooling::Last => self.last.clone(),
            HeadPooling::Mean => self
                .sum
                .iter()
                .map(|s| (s / self.n as f64) as f32)
                .collect(),
        })
    }
}

/// Pools a head's columns (`col .. col + C` of `width`-wide per-token `rows`) over the tokens.
pub(crate) fn pool(rows: &[f32], width: usize, head: &HeadInfo, col: usize) -> Option<Vec<f32>> {
    PoolAcc::over(rows, width, col..col + head.classes()).finish(head.pooling)
}

/// Which weights decode a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The base weights only.
    #[default]
    Chat,
    /// The LoRA reasoning adapter on (the prompt is still encoded by the base, see
    /// `GenerateParams::adapter_prompt`).
    Reasoning,
    /// The switcher head decides per request: the prompt is encoded by the base weights (as
    /// always), the switcher reads its mean-pooled hidden states, and decoding runs in chat or
    /// reasoning mode over that same KV. Needs a switcher head and an adapter.
    Auto,
}

/// A switcher's verdict on a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchDecision {
    /// The mode the switcher picks: reasoning when `p(reasoning)` reaches the head's
    /// threshold, or without one the label with the highest logit.
    pub mode: Mode,
    /// The head's labels, in its output order.
    pub labels: Vec<String>,
    /// Pooled logits, one per label.
    pub logits: Vec<f32>,
    /// Softmax of `logits`.
    pub probs: Vec<f32>,
}

impl SwitchDecision {
    pub(crate) fn new(
        labels: &[String],
        logits: Vec<f32>,
        threshold: Option<f32>,
    ) -> SwitchDecision {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f32 = e.iter().sum();
        let best = logits
            .iter()
            .enumerate()
            .fold(0, |b, (i, l)| if *l > logits[b] { i } else { b });
        let mut d = SwitchDecision {
            mode: Mode::Chat,
            labels: labels.to_vec(),
            probs: e.iter().map(|v| v / z).collect(),
            logits,
        };
        let reasoning = match threshold {
            Some(t) => d.reasoning_prob() >= t,
            None => labels[best] == "reasoning",
        };
        if reasoning {
            d.mode = Mode::Reasoning;
        }
        d
    }

    /// Probability of the reasoning label.
    pub fn reasoning_prob(&self) -> f32 {
        self.labels
            .iter()
            .position(|l| l == "reasoning")
            .map_or(0.0, |i| self.probs[i])
    }
}

/// `1 / (1 + e^−x)`: a verifier logit as a probability.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_decision_honours_the_threshold() {
        let labels = vec!["chat".to_string(), "reasoning".to_string()];
        // p(reasoning) = sigmoid(-1) = 0.27: argmax says chat, a threshold of 0.2 says reasoning.
        let logits = vec![0.0, -1.0];
        assert_eq!(
            SwitchDecision::new(&labels, logits.clone(), None).mode,
            Mode::Chat
        );
        let d = SwitchDecision::new(&labels, logits.clone(), Some(0.2));
        assert_eq!(d.mode, Mode::Reasoning);
        assert!((d.reasoning_prob() - sigmoid(-1.0)).abs() < 1e-6);
        assert_eq!(
            SwitchDecision::new(&labels, logits, Some(0.3)).mode,
            Mode::Chat
        );
    }

    #[test]
    fn the_features_head_is_the_identity() {
        let h = HeadInfo::features(3, HeadPooling::Mean);
        assert_eq!(h.weight, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!((h.classes(), h.bias.as_slice()), (3, &[0.0; 3][..]));
    }
}
