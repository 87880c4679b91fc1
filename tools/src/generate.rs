//! `kestrel generate`: stream a completion for one prompt.

use std::io::Write;

use kestrel::{aggregate, final_answer, Aggregation, GenerateParams, HeadKind, Message};

use crate::common::{load_head, report_switch, ModelArgs, ReasoningArgs, SamplingArgs};
use crate::tokenize::content_specials;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt as a user message in the model's chat template. This is the default when
    /// the model has a template (instruct models answer a bare prompt poorly, often with an
    /// empty line); with --chat, a model without one is an error.
    #[arg(long)]
    pub chat: bool,
    /// Plain completion: feed the prompt as raw text (with the tokenizer's own BOS), not as a
    /// chat message.
    #[arg(long, conflicts_with_all = ["chat", "system", "parse_special"])]
    pub raw: bool,
    /// Optional system message (chat template only).
    #[arg(long)]
    pub system: Option<String>,
    /// With --chat: read special-token text in the prompt (e.g. `<|im_end|>`) as the special
    /// token itself (raw template parsing; trusted input only). By default it stays text.
    #[arg(long)]
    pub parse_special: bool,
    /// Maximum tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub reasoning: ReasoningArgs,
    /// A verifier head .kst: with --paths, every path is scored and the answer is selected
    /// (--select).
    #[arg(long, value_name = "VERIFIER.kst")]
    pub verifier: Option<std::path::PathBuf>,
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
    // Flag errors before the (slow) model load.
    let select = match (args.select, &args.verifier) {
        (Some(SelectArg::Best | SelectArg::Weighted), None) => {
            anyhow::bail!("--select best and weighted need --verifier verifier.kst")
        }
        (Some(s), _) => s,
        (None, Some(_)) => SelectArg::Best,
        (None, None) => SelectArg::Vote,
    };
    if !(1..=kestrel::MAX_PATHS).contains(&args.paths) {
        anyhow::bail!(
            "--paths must be in 1..={}, got {}",
            kestrel::MAX_PATHS,
            args.paths
        );
    }
    args.sampling.checked()?;
    args.model.check_path()?;
    args.model.check_backend()?;
    args.reasoning.check(&args.model)?;
    let mut engine = args.model.load()?;
    args.reasoning.load_switcher(&mut engine)?;
    if let Some(path) = &args.verifier {
        load_head(&mut engine, "--verifier", path, HeadKind::Verifier)?;
    }
    let engine = engine;
    if args.chat && !engine.has_chat_template() {
        anyhow::bail!(
            "--chat: the model file has no chat template (use --raw for plain completion)"
        );
    }
    let prompt = if !args.raw && engine.has_chat_template() {
        let mut msgs = Vec::new();
        if let Some(s) = &args.system {
            msgs.push(Message::new("system", s));
        }
        msgs.push(Message::new("user", &args.prompt));
        engine.encode_chat_with(&msgs, content_specials(args.parse_special))?
    } else {
        engine.encode(&args.prompt)?
    };
    let (mode, thinking) = args.reasoning.params(&engine)?;
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: args.sampling.sampling(),
        mode,
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
            answers.push(final_answer(&text, Some(&args.reasoning.think_end)));
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
    // A failed write (stdout closed) stops generating; the newline below reports it.
    session.generate(&prompt, &params, |t| {
        write!(out, "{}", t.text).and_then(|()| out.flush()).is_ok()
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

/// `--select`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectArg {
    Best,
    Vote,
    Weighted,
}
