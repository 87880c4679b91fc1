//! `--out` records: one JSON line per problem × configuration (the schema is in the README,
//! "Measuring reasoning"), and reading them back for `--resume`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The settings every record of a run shares; `--resume` refuses records made with others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub seed: u64,
    pub max_tokens: usize,
    pub think_end: String,
    pub answer_regex: Option<String>,
}

/// One path of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathRecord {
    /// The path's text (special tokens kept, the final stop token dropped).
    pub text: String,
    /// Generated tokens (the stop token included).
    pub tokens: usize,
    /// Tokens up to and including the last end-of-thinking marker (0 without one).
    pub thinking_tokens: usize,
    /// `tokens - thinking_tokens`.
    pub answer_tokens: usize,
    /// "stop" or "max_tokens".
    pub finish: String,
    /// The thinking budget ran out and the end of thinking was forced.
    pub thinking_forced: bool,
    /// The verifier's logit (with `--verifier`).
    pub score: Option<f32>,
    /// The normalised answer (see `--help`); `null` when none was found.
    pub answer: Option<String>,
    pub correct: bool,
}

/// One problem × configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The requested mode: "chat", "reasoning" or "auto".
    pub mode: String,
    pub n_paths: usize,
    /// "first", "vote", "best" or "weighted".
    pub select: String,
    pub think_budget: Option<usize>,
    /// The task's expected answer and routing label.
    pub expected: String,
    pub kind: Option<String>,
    /// Auto mode: the switcher's choice ("chat" or "reasoning") and its p(reasoning).
    pub routed: Option<String>,
    pub p_reasoning: Option<f32>,
    pub paths: Vec<PathRecord>,
    /// The selected path and its answer.
    pub selected_path: usize,
    pub selected_answer: Option<String>,
    pub correct: bool,
    /// Some path is correct.
    pub oracle: bool,
    pub prompt_tokens: usize,
    /// The generation (shared by the records of every `select` rule): prompt encoding until
    /// the first token (TTFT), decoding, and both.
    pub ttft_ms: f64,
    pub decode_ms: f64,
    pub wall_ms: f64,
    pub settings: Settings,
}

/// Which configuration of which problem a record is.
pub type Key = (String, String, usize, String, Option<usize>);

impl Record {
    pub fn key(&self) -> Key {
        (
            self.id.clone(),
            self.mode.clone(),
            self.n_paths,
            self.select.clone(),
            self.think_budget,
        )
    }
}

/// The records of an interrupted run at `path`, by key. A last line cut short by the
/// interruption is dropped (and truncated away, so appending continues cleanly); any other bad
/// line, or a record made with other settings, is an error.
pub fn load_for_resume(path: &Path, settings: &Settings) -> anyhow::Result<HashMap<Key, Record>> {
    let mut out = HashMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut good_len = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let complete = line.ends_with('\n');
        let rec: Record = match serde_json::from_str(line.trim_end()) {
            Ok(r) => r,
            Err(_) if !complete => break,
            Err(e) => bail!("{} line {}: {e}", path.display(), i + 1),
        };
        if rec.settings != *settings {
            bail!(
                "{} line {}: made with other settings ({:?}); resume with the same flags",
                path.display(),
                i + 1,
                rec.settings
            );
        }
        good_len += line.len();
        out.insert(rec.key(), rec);
    }
    if good_len < text.len() {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        f.set_len(good_len as u64)?;
    }
    Ok(out)
}

/// Appends records, one line each, flushed per call so an interruption loses at most the
/// generation in flight.
pub struct Writer(std::fs::File);

impl Writer {
    /// Without `resume`, refuses a file that already holds records.
    pub fn open(path: &Path, resume: bool) -> anyhow::Result<Writer> {
        if !resume && std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            bail!(
                "{} already holds records: pass --resume to continue that run, or choose \
                 another --out",
                path.display()
            );
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Writer(f))
    }

    pub fn write(&mut self, records: &[Record]) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        self.0.write_all(&buf)?;
        self.0.flush()?;
        Ok(())
    }
}
