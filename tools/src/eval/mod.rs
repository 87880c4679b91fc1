//! `kestrel eval`: accuracy, tokens and latency of a task file in every configuration (mode ×
//! paths × select rule × thinking budget).
//!
//! Per problem, mode and budget, each N of `--paths` is one `Session::generate_paths` batch over
//! the shared prompt KV, from an emptied prompt cache (so every configuration pays its own
//! prompt encoding and TTFT is comparable); every `--select` rule is scored on those same
//! paths. Records are written per generation; the table is computed from the records.

mod grade;
mod record;
mod report;
mod stats;
pub mod tasks;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kestrel::{
    aggregate, Aggregation, Engine, GenerateParams, HeadKind, Mode, PathOutput, ThinkingBudget,
};
use serde_json::json;

pub use grade::{Expected, Grader};
use record::{PathRecord, Record, Settings};

use crate::common::{load_head, ModelArgs, SamplingArgs};

const RULES: &str = "\
Grading:
  1. The graded text is what follows the last --think-end marker in a path's output (all of the
     output when the marker does not occur).
  2. With --answer-regex RE it is narrowed to the last match of RE: capture group 1 if the group
     took part in the match, else the whole match (no match: no answer, wrong).
  3. If the task's answer parses as a number, the LAST number in that text (optional minus sign,
     digits with optional thousands commas, optional decimal part) is compared numerically.
     Otherwise both are compared as text: trimmed, whitespace runs collapsed, case-folded.
Votes group paths by that normalised answer. Selection: first = path 0; vote = the most frequent
answer; best = the path with the highest verifier score; weighted = the answer with the largest
sum of verifier probabilities (best and weighted need --verifier).

Tasks: JSON Lines {\"id\", \"prompt\" (or \"messages\"), \"answer\", \"kind\": \"chat\"|\"reasoning\"
(optional: judges auto mode's routing)}; a prompt is one user message rendered through the
model's chat template with the generation prompt.

Columns: accuracy with its 95% Wilson interval; oracle = some path correct; thinking / answer
tokens per path (mean/p50/p90; thinking = up to and including the last marker); forced = paths
whose thinking the budget ended; wall s and TTFT ms per problem (mean); tok/s = generated tokens
of all paths per second of decoding; auto mode: routed = fraction sent to reasoning, route✓ =
routing accuracy against `kind`.";

#[derive(clap::Args)]
#[command(after_long_help = RULES)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The task file (JSON Lines; see --help).
    #[arg(long)]
    pub tasks: PathBuf,
    /// A switcher head .kst (for --mode auto).
    #[arg(long, value_name = "SWITCHER.kst")]
    pub switcher: Option<PathBuf>,
    /// A verifier head .kst: paths get scores (for --select best,weighted).
    #[arg(long, value_name = "VERIFIER.kst")]
    pub verifier: Option<PathBuf>,
    /// Modes to run, comma-separated: chat (base weights), reasoning (the --adapter over the
    /// base-encoded prompt), auto (the --switcher picks per problem).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "chat")]
    pub mode: Vec<crate::common::ModeArg>,
    /// Numbers of parallel paths (1..=16), comma-separated; each is its own generation.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub paths: Vec<usize>,
    /// Selection rules scored on every generation, comma-separated: first, vote, best, weighted.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "first,vote")]
    pub select: Vec<Select>,
    /// Thinking budgets (budget forcing), comma-separated; each is its own configuration.
    #[arg(long, value_delimiter = ',', value_name = "N[,N2...]")]
    pub think_budget: Vec<usize>,
    /// The end-of-thinking marker: what budget forcing inserts, and where graded text starts.
    #[arg(long, default_value = "</think>")]
    pub think_end: String,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Maximum tokens generated per path.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Grade the last match of this regex (group 1, else the whole match); see --help.
    #[arg(long, value_name = "RE")]
    pub answer_regex: Option<String>,
    /// Only the first K tasks.
    #[arg(long, value_name = "K")]
    pub limit: Option<usize>,
    /// Append one JSON record per problem × configuration (schema: README).
    #[arg(long, value_name = "records.jsonl")]
    pub out: Option<PathBuf>,
    /// Skip the configurations already in --out and report over all of them.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Print the report as JSON (schema: README) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--select`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    First,
    Vote,
    Best,
    Weighted,
}

impl Select {
    fn name(self) -> &'static str {
        match self {
            Select::First => "first",
            Select::Vote => "vote",
            Select::Best => "best",
            Select::Weighted => "weighted",
        }
    }
}

fn mode_name(m: crate::common::ModeArg) -> &'static str {
    use crate::common::ModeArg;
    match m {
        ModeArg::Chat => "chat",
        ModeArg::Reasoning => "reasoning",
        ModeArg::Auto => "auto",
    }
}

fn mode_of(m: crate::common::ModeArg) -> Mode {
    use crate::common::ModeArg;
    match m {
        ModeArg::Chat => Mode::Chat,
        ModeArg::Reasoning => Mode::Reasoning,
        ModeArg::Auto => Mode::Auto,
    }
}

/// Tokens of `tokens` up to and including the last `marker` in their text (0 without one):
/// the shortest prefix whose text holds as many markers as the whole (a binary search; the
/// count only grows with the prefix).
pub fn thinking_tokens(
    engine: &Engine,
    tokens: &[u32],
    text: &str,
    marker: &str,
) -> anyhow::Result<usize> {
    if marker.is_empty() {
        return Ok(0);
    }
    let total = text.matches(marker).count();
    if total == 0 {
        return Ok(0);
    }
    let (mut lo, mut hi) = (1, tokens.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if engine
            .tokenizer()
            .decode(&tokens[..mid], false)?
            .matches(marker)
            .count()
            >= total
        {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(hi)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    use crate::common::ModeArg;
    // Flag errors before the (slow) model load.
    if args.paths.iter().any(|&n| n == 0 || n > kestrel::MAX_PATHS) {
        bail!("--paths must be in 1..={}", kestrel::MAX_PATHS);
    }
    if args.verifier.is_none()
        && args
            .select
            .iter()
            .any(|s| matches!(s, Select::Best | Select::Weighted))
    {
        bail!("--select best and weighted need --verifier verifier.kst");
    }
    if args.mode.iter().any(|&m| m != ModeArg::Chat) && args.model.adapter.is_none() {
        bail!("--mode reasoning and auto need --adapter reasoning.kst");
    }
    if args.mode.contains(&ModeArg::Auto) && args.switcher.is_none() {
        bail!("--mode auto needs --switcher switcher.kst");
    }
    let grader = Grader::new(&args.think_end, args.answer_regex.as_deref())?;
    let mut tasks = tasks::load(&args.tasks)?;
    tasks.truncate(args.limit.unwrap_or(usize::MAX));
    let expected: Vec<Expected> = tasks
        .iter()
        .map(|t| match &t.answer {
            Some(a) => Ok(Expected::parse(a)),
            None => bail!("task {:?} has no answer", t.id),
        })
        .collect::<anyhow::Result<_>>()?;
    let settings = Settings {
        temperature: args.sampling.temperature,
        top_p: args.sampling.top_p,
        top_k: args.sampling.top_k,
        seed: args.sampling.seed,
        max_tokens: args.max_tokens,
        think_end: args.think_end.clone(),
        answer_regex: args.answer_regex.clone(),
    };
    let mut done = match (&args.out, args.resume) {
        (Some(p), true) => record::load_for_resume(p, &settings)?,
        _ => HashMap::new(),
    };
    let mut writer = args
        .out
        .as_ref()
        .map(|p| record::Writer::open(p, args.resume))
        .transpose()?;

    let mut engine = args.model.load()?;
    if let Some(p) = &args.switcher {
        load_head(&mut engine, "--switcher", p, HeadKind::Switcher)?;
    }
    if let Some(p) = &args.verifier {
        load_head(&mut engine, "--verifier", p, HeadKind::Verifier)?;
    }
    let engine = engine;
    let end_ids = engine.tokenizer().encode(&args.think_end, false)?;
    let budgets: Vec<Option<usize>> = if args.think_budget.is_empty() {
        vec![None]
    } else {
        if end_ids.is_empty() {
            bail!("--think-end must not be empty with --think-budget");
        }
        args.think_budget.iter().map(|&b| Some(b)).collect()
    };
    let stop = engine.config().eos_token_ids.clone();
    let mut session = engine.session()?;

    let generations = tasks.len() * args.mode.len() * budgets.len() * args.paths.len();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(generations as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "eval [{elapsed_precise}] {wide_bar} {pos}/{len} generations (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Shader pipelines compile on first use (per path count and adapter use), which would
    // land in the first configuration's timings: each (mode, N) runs 2 tokens untimed first.
    if tasks.len() * args.mode.len() * budgets.len() * args.paths.len() * args.select.len()
        > done.len()
    {
        let prompt = engine.encode_chat(&tasks[0].messages)?;
        for &mode in &args.mode {
            for &n in &args.paths {
                let params = GenerateParams {
                    max_tokens: 2,
                    mode: mode_of(mode),
                    ..Default::default()
                };
                session.reset();
                session.generate_paths(&prompt, n, &params)?;
            }
        }
    }
    let started = Instant::now();
    let mut generating = Duration::ZERO;
    let mut records: Vec<Record> = Vec::new();
    for (task, want) in tasks.iter().zip(&expected) {
        let prompt = engine
            .encode_chat(&task.messages)
            .with_context(|| format!("task {:?}", task.id))?;
        for &mode in &args.mode {
            for &budget in &budgets {
                for &n in &args.paths {
                    bar.inc(1);
                    let key = |s: Select| {
                        (
                            task.id.clone(),
                            mode_name(mode).to_string(),
                            n,
                            s.name().to_string(),
                            budget,
                        )
                    };
                    if args.select.iter().all(|&s| done.contains_key(&key(s))) {
                        records.extend(args.select.iter().filter_map(|&s| done.remove(&key(s))));
                        continue;
                    }
                    let params = GenerateParams {
                        max_tokens: args.max_tokens,
                        sampling: args.sampling.sampling(),
                        mode: mode_of(mode),
                        thinking: budget.map(|max_tokens| ThinkingBudget {
                            max_tokens,
                            end: end_ids.clone(),
                        }),
                        ..Default::default()
                    };
                    // Every configuration encodes its prompt itself (comparable TTFT).
                    session.reset();
                    let t0 = Instant::now();
                    let paths = session
                        .generate_paths(&prompt, n, &params)
                        .with_context(|| format!("task {:?}", task.id))?;
                    let wall = t0.elapsed();
                    generating += wall;
                    let gen = Generation {
                        task,
                        want,
                        mode: mode_name(mode),
                        budget,
                        wall,
                        timings: session.timings(),
                        switch: session.last_switch().filter(|_| mode == ModeArg::Auto),
                    };
                    let new =
                        gen.records(&engine, &grader, &stop, &paths, &args.select, &settings)?;
                    if let Some(w) = &mut writer {
                        let missing: Vec<Record> = new
                            .iter()
                            .filter(|r| !done.contains_key(&r.key()))
                            .cloned()
                            .collect();
                        w.write(&missing)?;
                    }
                    for r in &new {
                        done.remove(&r.key());
                    }
                    records.extend(new);
                }
            }
        }
    }
    bar.finish_and_clear();
    let total = started.elapsed();

    let mut rows = Vec::new();
    for &mode in &args.mode {
        for &budget in &budgets {
            for &n in &args.paths {
                for &s in &args.select {
                    let of: Vec<&Record> = records
                        .iter()
                        .filter(|r| {
                            r.mode == mode_name(mode)
                                && r.think_budget == budget
                                && r.n_paths == n
                                && r.select == s.name()
                        })
                        .collect();
                    if let Some(first) = of.first() {
                        rows.push(report::row(first, &of));
                    }
                }
            }
        }
    }
    let harness = total.saturating_sub(generating);
    let overhead = harness.as_secs_f64() / generating.as_secs_f64().max(1e-9);
    if args.json {
        let out = json!({
            "schema": 1,
            "model": args.model.model.display().to_string(),
            "device": engine.adapter_description(),
            "tasks": tasks.len(),
            "settings": settings,
            "rows": rows,
            "overhead": {
                "generation_s": generating.as_secs_f64(),
                "harness_s": harness.as_secs_f64(),
                "fraction": overhead,
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", report::table(&rows));
        println!(
            "{} tasks on {}; harness {:.2} s = {:.2}% of {:.1} s generating",
            tasks.len(),
            engine.adapter_description(),
            harness.as_secs_f64(),
            overhead * 100.0,
            generating.as_secs_f64()
        );
    }
    Ok(())
}

/// One generation of one problem (N paths, one mode and budget), turned into its records.
struct Generation<'a> {
    task: &'a tasks::Task,
    want: &'a Expected,
    mode: &'static str,
    budget: Option<usize>,
    wall: Duration,
    timings: kestrel::Timings,
    switch: Option<&'a kestrel::SwitchDecision>,
}

impl Generation<'_> {
    fn records(
        &self,
        engine: &Engine,
        grader: &Grader,
        stop: &[u32],
        paths: &[PathOutput],
        select: &[Select],
        settings: &Settings,
    ) -> anyhow::Result<Vec<Record>> {
        let mut out_paths = Vec::with_capacity(paths.len());
        for p in paths {
            let stopped = p.finish == kestrel::FinishReason::Stop
                && p.tokens.last().is_some_and(|t| stop.contains(t));
            let body = &p.tokens[..p.tokens.len() - usize::from(stopped)];
            let text = engine.tokenizer().decode(body, false)?;
            let thinking = thinking_tokens(engine, body, &text, &settings.think_end)?;
            let g = grader.grade(&text, self.want);
            out_paths.push(PathRecord {
                tokens: p.tokens.len(),
                thinking_tokens: thinking,
                answer_tokens: p.tokens.len() - thinking,
                finish: if p.finish == kestrel::FinishReason::Stop {
                    "stop"
                } else {
                    "max_tokens"
                }
                .into(),
                thinking_forced: p.thinking_forced,
                score: p.score,
                answer: g.key,
                correct: g.correct,
                text,
            });
        }
        let keys: Vec<String> = out_paths
            .iter()
            .map(|p| p.answer.clone().unwrap_or_default())
            .collect();
        let scores: Vec<Option<f32>> = paths.iter().map(|p| p.score).collect();
        let oracle = out_paths.iter().any(|p| p.correct);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        select
            .iter()
            .map(|&s| {
                let chosen = match s {
                    Select::First => 0,
                    Select::Vote => aggregate(&keys, &scores, Aggregation::MajorityVote)?.path,
                    Select::Best => aggregate(&keys, &scores, Aggregation::BestOfN)?.path,
                    Select::Weighted => aggregate(&keys, &scores, Aggregation::WeightedVote)?.path,
                };
                Ok(Record {
                    id: self.task.id.clone(),
                    mode: self.mode.into(),
                    n_paths: paths.len(),
                    select: s.name().into(),
                    think_budget: self.budget,
                    expected: self.task.answer.clone().unwrap_or_default(),
                    kind: self.task.kind.map(|k| k.name().to_string()),
                    routed: self.switch.map(|d| {
                        if d.mode == Mode::Reasoning {
                            "reasoning"
                        } else {
                            "chat"
                        }
                        .to_string()
                    }),
                    p_reasoning: self.switch.map(|d| d.reasoning_prob()),
                    selected_path: chosen,
                    selected_answer: out_paths[chosen].answer.clone(),
                    correct: out_paths[chosen].correct,
                    oracle,
                    paths: out_paths.clone(),
                    prompt_tokens: self.timings.prompt_tokens,
                    ttft_ms: ms(self.timings.prefill),
                    decode_ms: ms(self.timings.decode),
                    wall_ms: ms(self.wall),
                    settings: settings.clone(),
                })
            })
            .collect()
    }
}
