//! `kestrel train-head`: fits a switcher or verifier head on the engine's own features and
//! writes a head `.kst`.
//!
//! Features come from `Engine::enable_features`: the identity head run by the same kernels and
//! pooled by the same code as every loaded head, so the logits of the head written here, loaded
//! by the engine, are `W · feature + b` for exactly the features trained on (up to f32
//! rounding). Switcher: the base-encoded prompt's pooled hidden states
//! (`Session::prompt_features`). Verifier: each sampled path's pooled features
//! (`PathOutput::features`, pooled over prompt + path as its score is), labelled by the `eval`
//! grading rules; or, with `--data`, given paths encoded as `Session::score_with` encodes them.

mod data;
pub mod logreg;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use kestrel::{aggregate, Aggregation, GenerateParams, HeadPooling, Message, Mode, ThinkingBudget};
use kestrel_formats::head::{write_head, HeadSpec};
use serde::Deserialize;
use serde_json::json;

use crate::common::{ModelArgs, SamplingArgs};
use crate::eval::{tasks, Expected, Grader};
use data::{Example, Header};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// switcher (labelled prompts) or verifier (graded paths).
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Switcher: prompts in the task format with `kind` ("chat" | "reasoning") on every line.
    /// Verifier: labelled paths, one JSON object a line: {"id" (optional, groups a problem's
    /// paths), "prompt" or "messages", "completion": the path's text, "correct": true|false}.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Verifier: a task file (as `kestrel eval` reads); the engine samples --paths paths per
    /// problem and grades each with eval's rules.
    #[arg(long)]
    pub tasks: Option<PathBuf>,
    /// Paths sampled per problem (with --tasks).
    #[arg(long, default_value_t = 8)]
    pub paths: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Maximum tokens per sampled path.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Thinking budget of the sampled paths (budget forcing).
    #[arg(long, value_name = "N")]
    pub think_budget: Option<usize>,
    /// The end-of-thinking marker (budget forcing and grading, as in eval).
    #[arg(long, default_value = "</think>")]
    pub think_end: String,
    /// Grade the last match of this regex, as in eval.
    #[arg(long, value_name = "RE")]
    pub answer_regex: Option<String>,
    /// How the head pools per-token states: mean or last (default: mean for a switcher, last
    /// for a verifier).
    #[arg(long, value_enum)]
    pub pooling: Option<PoolingArg>,
    /// Fraction of problems held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Seed of the train/validation split.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// L2 strength on the standardised features (the bias is not penalised).
    #[arg(long, default_value_t = 1.0)]
    pub l2: f64,
    /// The decision threshold stored in the head (on p(reasoning) / p(correct)).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Write the computed features here (reuse them with --features-in).
    #[arg(long)]
    pub features_out: Option<PathBuf>,
    /// Fit on cached features instead of running the model (MODEL still names the base).
    #[arg(long, conflicts_with_all = ["data", "tasks"])]
    pub features_in: Option<PathBuf>,
    /// The head .kst to write.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    Switcher,
    Verifier,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolingArg {
    Mean,
    Last,
}

/// A `--data` line of labelled verifier paths.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathLine {
    id: Option<serde_json::Value>,
    prompt: Option<String>,
    messages: Option<Vec<MessageLine>>,
    completion: String,
    correct: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageLine {
    role: String,
    content: String,
}

fn bar(len: usize, what: &str) -> indicatif::ProgressBar {
    let b = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    b.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let kind = match args.kind {
        KindArg::Switcher => "switcher",
        KindArg::Verifier => "verifier",
    };
    let pooling = match args.pooling {
        Some(PoolingArg::Mean) => HeadPooling::Mean,
        Some(PoolingArg::Last) => HeadPooling::Last,
        None if args.kind == KindArg::Switcher => HeadPooling::Mean,
        None => HeadPooling::Last,
    };
    let pooling_name = if pooling == HeadPooling::Mean {
        "mean"
    } else {
        "last"
    };
    if !(0.0..1.0).contains(&args.val_fraction) {
        bail!("--val-fraction must be in [0, 1)");
    }
    if !(args.threshold > 0.0 && args.threshold < 1.0) {
        bail!("--threshold must be in (0, 1)");
    }
    let base_hash = kestrel_formats::KstFile::open(&args.model.model)
        .with_context(|| format!("opening {}", args.model.model.display()))?
        .header_hash();
    let grader = Grader::new(&args.think_end, args.answer_regex.as_deref())?;
    let (header, examples) = match &args.features_in {
        Some(p) => {
            let (h, e) = data::read(p)?;
            if h.kind != kind || h.pooling != pooling_name || h.base_hash != base_hash {
                bail!(
                    "{} holds {} features pooled by {} for base {}, not {kind} / {pooling_name} / {base_hash}",
                    p.display(), h.kind, h.pooling, h.base_hash
                );
            }
            (h, e)
        }
        None => {
            let e = compute(&args, pooling, &grader)?;
            let hidden = e.first().map_or(0, |e| e.x.len());
            let h = Header {
                kestrel_features: 1,
                kind: kind.into(),
                pooling: pooling_name.into(),
                base_hash: base_hash.clone(),
                hidden,
            };
            if let Some(p) = &args.features_out {
                data::write(p, &h, &e)?;
            }
            (h, e)
        }
    };
    let (train, val) = data::split(&examples, args.val_fraction, args.split_seed);
    let rows = |ix: &[usize]| -> (Vec<Vec<f32>>, Vec<bool>) {
        ix.iter()
            .map(|&i| (examples[i].x.clone(), examples[i].label))
            .unzip()
    };
    let (tx, ty) = rows(&train);
    let model = logreg::fit(&tx, &ty, args.l2)?;
    let metrics = |ix: &[usize]| {
        let scores: Vec<f64> = ix.iter().map(|&i| model.prob(&examples[i].x)).collect();
        let labels: Vec<bool> = ix.iter().map(|&i| examples[i].label).collect();
        let right = scores
            .iter()
            .zip(&labels)
            .filter(|(p, l)| (**p >= f64::from(args.threshold)) == **l)
            .count();
        json!({
            "examples": ix.len(),
            "positive": labels.iter().filter(|&&l| l).count(),
            "accuracy": if ix.is_empty() { 0.0 } else { right as f64 / ix.len() as f64 },
            "auc": data::auc(&scores, &labels),
        })
    };
    let selection = (args.kind == KindArg::Verifier)
        .then(|| selection(&examples, &val, &model))
        .transpose()?;

    // The head: a switcher's chat row is zero, so softmax gives p(reasoning) = σ(w·x + b).
    let hidden = header.hidden;
    let w: Vec<f32> = model.w.iter().map(|&v| v as f32).collect();
    let (labels, weight, bias) = match args.kind {
        KindArg::Switcher => (
            vec!["chat".to_string(), "reasoning".to_string()],
            [vec![0.0; hidden], w].concat(),
            vec![0.0, model.b as f32],
        ),
        KindArg::Verifier => (vec!["score".to_string()], w, vec![model.b as f32]),
    };
    let spec = HeadSpec {
        kind: kind.into(),
        pooling: pooling_name.into(),
        labels,
    };
    write_head(
        &args.out,
        &base_hash,
        &spec,
        &weight,
        &bias,
        Some(args.threshold),
    )?;

    let report = json!({
        "kind": kind,
        "pooling": pooling_name,
        "hidden": hidden,
        "l2": args.l2,
        "threshold": args.threshold,
        "train": metrics(&train),
        "val": metrics(&val),
        "selection": selection,
        "out": args.out.display().to_string(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let line = |name: &str, m: &serde_json::Value| {
            println!(
                "{name:<5} {:>5} examples ({} positive): accuracy {:.3}, AUC {}",
                m["examples"],
                m["positive"],
                m["accuracy"].as_f64().unwrap_or(0.0),
                m["auc"].as_f64().map_or("-".into(), |a| format!("{a:.3}"))
            )
        };
        line("train", &report["train"]);
        line("val", &report["val"]);
        if let Some(s) = &report["selection"].as_object() {
            println!(
                "val problems {}: first path {:.3}, majority vote {:.3}, best-of-N {:.3}, weighted vote {:.3}",
                s["problems"], s["first"].as_f64().unwrap_or(0.0), s["vote"].as_f64().unwrap_or(0.0),
                s["best"].as_f64().unwrap_or(0.0), s["weighted"].as_f64().unwrap_or(0.0)
            );
        }
        println!(
            "wrote {} ({kind}, pooling {pooling_name}, threshold {})",
            args.out.display(),
            args.threshold
        );
    }
    Ok(())
}

/// Accuracy on the validation problems of the first path, the majority vote, and best-of-N /
/// weighted vote by the fitted head's scores.
fn selection(
    examples: &[Example],
    val: &[usize],
    model: &logreg::Model,
) -> anyhow::Result<serde_json::Value> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for &i in val {
        match groups.iter_mut().find(|(g, _)| *g == examples[i].group) {
            Some((_, v)) => v.push(i),
            None => groups.push((&examples[i].group, vec![i])),
        }
    }
    let mut right = [0usize; 4];
    for (_, ix) in &groups {
        let keys: Vec<String> = ix
            .iter()
            .map(|&i| examples[i].answer.clone().unwrap_or_default())
            .collect();
        let scores: Vec<Option<f32>> = ix
            .iter()
            .map(|&i| Some(model.logit(&examples[i].x) as f32))
            .collect();
        let none = vec![None; ix.len()];
        let picks = [
            0,
            aggregate(&keys, &none, Aggregation::MajorityVote)?.path,
            aggregate(&keys, &scores, Aggregation::BestOfN)?.path,
            aggregate(&keys, &scores, Aggregation::WeightedVote)?.path,
        ];
        for (r, p) in right.iter_mut().zip(picks) {
            *r += usize::from(examples[ix[p]].label);
        }
    }
    let n = groups.len().max(1) as f64;
    Ok(json!({
        "problems": groups.len(),
        "first": right[0] as f64 / n,
        "vote": right[1] as f64 / n,
        "best": right[2] as f64 / n,
        "weighted": right[3] as f64 / n,
    }))
}

/// Runs the model for the features of every example.
fn compute(args: &Args, pooling: HeadPooling, grader: &Grader) -> anyhow::Result<Vec<Example>> {
    let mut engine = args.model.load()?;
    engine.enable_features(pooling)?;
    let engine = engine;
    let adapter = engine.adapters().next().map(|(id, _)| id);
    let mut session = engine.session()?;
    let mut out = Vec::new();
    match (args.kind, &args.data, &args.tasks) {
        (KindArg::Switcher, Some(p), None) => {
            let tasks = tasks::load(p)?;
            let b = bar(tasks.len(), "features");
            for t in &tasks {
                let Some(k) = t.kind else {
                    bail!("{}: task {:?} has no `kind`", p.display(), t.id);
                };
                let prompt = engine.encode_chat(&t.messages)?;
                out.push(Example {
                    group: t.id.clone(),
                    label: k == tasks::TaskKind::Reasoning,
                    answer: None,
                    x: session.prompt_features(&prompt)?,
                });
                b.inc(1);
            }
            b.finish_and_clear();
        }
        (KindArg::Switcher, _, _) => bail!("a switcher trains on --data prompts.jsonl"),
        (KindArg::Verifier, Some(p), None) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let lines: Vec<(usize, &str)> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .collect();
            let b = bar(lines.len(), "features");
            for (i, l) in lines {
                let line: PathLine = serde_json::from_str(l)
                    .with_context(|| format!("{} line {}", p.display(), i + 1))?;
                let messages: Vec<Message> = match (&line.prompt, &line.messages) {
                    (Some(p), None) => vec![Message::new("user", p)],
                    (None, Some(m)) if !m.is_empty() => m
                        .iter()
                        .map(|m| Message::new(&m.role, &m.content))
                        .collect(),
                    _ => bail!(
                        "{} line {}: give `prompt` or `messages`",
                        p.display(),
                        i + 1
                    ),
                };
                let prompt = engine.encode_chat(&messages)?;
                let path = engine.tokenizer().encode(&line.completion, false)?;
                let tokens = [prompt.clone(), path].concat();
                let group = match &line.id {
                    Some(v) => v.to_string(),
                    None => engine.render_chat(&messages)?,
                };
                let answer =
                    kestrel::final_answer(&line.completion, Some(&args.think_end)).to_lowercase();
                out.push(Example {
                    group,
                    label: line.correct,
                    answer: Some(answer),
                    x: session.features_with(&tokens, adapter, prompt.len())?,
                });
                b.inc(1);
            }
            b.finish_and_clear();
        }
        (KindArg::Verifier, None, Some(p)) => {
            let tasks = tasks::load(p)?;
            let end = engine.tokenizer().encode(&args.think_end, false)?;
            let params = GenerateParams {
                max_tokens: args.max_tokens,
                sampling: args.sampling.sampling(),
                mode: if adapter.is_some() {
                    Mode::Reasoning
                } else {
                    Mode::Chat
                },
                thinking: match args.think_budget {
                    Some(max_tokens) if !end.is_empty() => Some(ThinkingBudget { max_tokens, end }),
                    Some(_) => bail!("--think-end must not be empty with --think-budget"),
                    None => None,
                },
                ..Default::default()
            };
            let stop = engine.config().eos_token_ids.clone();
            let b = bar(tasks.len(), "sampling");
            for t in &tasks {
                let want = Expected::parse(
                    t.answer
                        .as_deref()
                        .with_context(|| format!("task {:?} has no answer", t.id))?,
                );
                let prompt = engine.encode_chat(&t.messages)?;
                session.reset();
                for p in session.generate_paths(&prompt, args.paths, &params)? {
                    let stopped = p.finish == kestrel::FinishReason::Stop
                        && p.tokens.last().is_some_and(|t| stop.contains(t));
                    let text = engine
                        .tokenizer()
                        .decode(&p.tokens[..p.tokens.len() - usize::from(stopped)], false)?;
                    let g = grader.grade(&text, &want);
                    out.push(Example {
                        group: t.id.clone(),
                        label: g.correct,
                        answer: g.key,
                        x: p.features.context("the engine returned no path features")?,
                    });
                }
                b.inc(1);
            }
            b.finish_and_clear();
        }
        (KindArg::Verifier, _, _) => {
            bail!("a verifier trains on --tasks tasks.jsonl (sampled and graded) or --data labelled_paths.jsonl")
        }
    }
    if out.is_empty() {
        bail!("no examples");
    }
    Ok(out)
}
