//! `kestrel generate`: stream a completion for one prompt.

use std::io::Write;

use kestrel::{
    aggregate, final_answer, Aggregation, GenerateParams, HeadKind, Message, Mode, ThinkingBudget,
};

use crate::common::{ModelArgs, SamplingArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Optional system message (with --chat).
    #[arg(long)]
    pub system: Option<String>,
    /// Maximum tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// chat: decode with the base weights; reasoning: decode with the LoRA adapter (--adapter) on,
    /// over the prompt KV the base weights encoded (KV sharing); auto: the switcher head
    /// (--switcher) reads the encoded prompt and picks chat or reasoning (printed on stderr).
    #[arg(long, value_enum, default_value_t = ModeArg::Chat)]
    pub mode: ModeArg,
    /// A switcher head .kst (`kestrel convert head_dir --base model.kst`), for --mode auto.
    #[arg(long, value_name = "SWITCHER.kst")]
    pub switcher: Option<std::path::PathBuf>,
    /// A verifier head .kst: with --paths, every path is scored and the answer is selected
    /// (--select).
    #[arg(long, value_name = "VERIFIER.kst")]
    pub verifier: Option<std::path::PathBuf>,
    /// Thinking budget (budget forcing): after N sampled tokens without the end-of-thinking
    /// marker (--think-end), the marker is forced and the model goes on to its answer.
    #[arg(long, value_name = "N")]
    pub think_budget: Option<usize>,
    /// The end-of-thinking marker: what budget forcing inserts, and where --paths answers
    /// start.
    #[arg(long, default_value = "</think>")]
    pub think_end: String,
    /// How --paths picks the answer: best (highest verifier score), vote (most frequent answer)
    /// or weighted (answers weighted by verifier probability). Default: best with a verifier,
    /// else vote.
    #[arg(long, value_enum)]
    pub select: Option<SelectArg>,
    /// Encode the prompt with the adapter on too (standard LoRA semantics) instead of sharing the
    /// base model's prompt KV.
    #[arg(long)]
    pub adapter_prompt: bool,
    /// Decode N paths (1..=16) in parallel over the shared prompt (use a temperature so they
    /// differ); each path is printed when all are done, then the selected answer.
    #[arg(long, default_value_t = 1)]
    pub paths: usize,
    /// Print timing (prefill and decode tok/s) on stderr at the end.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut engine = args.model.load()?;
    for (flag, path) in [
        ("--switcher", &args.switcher),
        ("--verifier", &args.verifier),
    ] {
        let Some(path) = path else { continue };
        let kind = engine
            .load_head(path)
            .map_err(|e| anyhow::anyhow!("loading {flag} {}: {e}", path.display()))?;
        let want = if flag == "--switcher" {
            HeadKind::Switcher
        } else {
            HeadKind::Verifier
        };
        if kind != want {
            anyhow::bail!("{flag} {} holds a {kind:?} head", path.display());
        }
    }
    let engine = engine;
    let prompt = if args.chat {
        let mut msgs = Vec::new();
        if let Some(s) = &args.system {
            msgs.push(Message::new("system", s));
        }
        msgs.push(Message::new("user", &args.prompt));
        engine.encode_chat(&msgs)?
    } else {
        engine.encode(&args.prompt)?
    };
    if args.mode != ModeArg::Chat && args.model.adapter.is_none() {
        anyhow::bail!(
            "--mode {} needs --adapter reasoning.kst",
            if args.mode == ModeArg::Auto {
                "auto"
            } else {
                "reasoning"
            }
        );
    }
    if args.mode == ModeArg::Auto && args.switcher.is_none() {
        anyhow::bail!("--mode auto needs --switcher switcher.kst");
    }
    let select = match (args.select, &args.verifier) {
        (Some(SelectArg::Best | SelectArg::Weighted), None) => {
            anyhow::bail!("--select best and weighted need --verifier verifier.kst")
        }
        (Some(s), _) => s,
        (None, Some(_)) => SelectArg::Best,
        (None, None) => SelectArg::Vote,
    };
    let thinking = match args.think_budget {
        None => None,
        Some(max_tokens) => {
            let end = engine.tokenizer().encode(&args.think_end, false)?;
            if end.is_empty() {
                anyhow::bail!("--think-end must not be empty");
            }
            Some(ThinkingBudget { max_tokens, end })
        }
    };
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: args.sampling.sampling(),
        mode: match args.mode {
            ModeArg::Chat => Mode::Chat,
            ModeArg::Reasoning => Mode::Reasoning,
            ModeArg::Auto => Mode::Auto,
        },
        adapter_prompt: args.adapter_prompt,
        thinking,
        ..Default::default()
    };
    let mut session = engine.session()?;
    let mut out = std::io::stdout().lock();
    if args.paths > 1 {
        let paths = session.generate_paths(&prompt, args.paths, &params)?;
        report_switch(&session);
        let mut answers = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let mut notes = format!("{:?}", p.finish);
            if let Some(s) = p.score {
                notes += &format!(", verifier {:.3}", kestrel::sigmoid(s));
            }
            if p.thinking_forced {
                notes += ", thinking budget forced";
            }
            writeln!(out, "--- path {i} ({notes}) ---")?;
            // Special tokens kept so the end-of-thinking marker is found even when it is one.
            let text = engine.tokenizer().decode(&p.tokens, false)?;
            writeln!(out, "{}", engine.tokenizer().decode(&p.tokens, true)?)?;
            answers.push(final_answer(&text, Some(&args.think_end)));
        }
        let scores: Vec<Option<f32>> = paths.iter().map(|p| p.score).collect();
        let how = match select {
            SelectArg::Best => Aggregation::BestOfN,
            SelectArg::Vote => Aggregation::MajorityVote,
            SelectArg::Weighted => Aggregation::WeightedVote,
        };
        let c = aggregate(&answers, &scores, how)?;
        writeln!(
            out,
            "=== selected: path {} ({how:?}, {} of {} paths agree) ===",
            c.path,
            c.votes,
            paths.len()
        )?;
        writeln!(out, "{}", c.answer)?;
        return Ok(());
    }
    session.generate(&prompt, &params, |t| {
        let _ = write!(out, "{}", t.text);
        let _ = out.flush();
        true
    })?;
    writeln!(out)?;
    report_switch(&session);
    if args.stats {
        let t = session.timings();
        eprintln!(
            "prompt {} tokens ({} cached) in {:.0} ms; {} tokens generated at {:.2} tok/s [{}]",
            t.prompt_tokens,
            t.cached_tokens,
            t.prefill.as_secs_f64() * 1e3,
            t.generated,
            t.generated.saturating_sub(1) as f64 / t.decode.as_secs_f64().max(1e-9),
            engine.adapter_description()
        );
        for (name, calls, time) in session.profile() {
            eprintln!(
                "  {name:<20} {calls:>6} calls {:>10.1} ms",
                time.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

/// The switcher's decision (auto mode) on stderr.
fn report_switch(session: &kestrel::Session<'_>) {
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

/// `--select`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectArg {
    Best,
    Vote,
    Weighted,
}
