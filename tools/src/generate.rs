//! `kestrel generate`: stream a completion for one prompt.

use std::io::Write;

use kestrel::{GenerateParams, Message, Mode};

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
    /// over the prompt KV the base weights encoded (KV sharing).
    #[arg(long, value_enum, default_value_t = ModeArg::Chat)]
    pub mode: ModeArg,
    /// Encode the prompt with the adapter on too (standard LoRA semantics) instead of sharing the
    /// base model's prompt KV.
    #[arg(long)]
    pub adapter_prompt: bool,
    /// Decode N paths (1..=16) in parallel over the shared prompt (use a temperature so they
    /// differ); each path is printed when all are done.
    #[arg(long, default_value_t = 1)]
    pub paths: usize,
    /// Print timing (prefill and decode tok/s) on stderr at the end.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let engine = args.model.load()?;
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
    if args.mode == ModeArg::Reasoning && args.model.adapter.is_none() {
        anyhow::bail!("--mode reasoning needs --adapter reasoning.kst");
    }
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: args.sampling.sampling(),
        mode: match args.mode {
            ModeArg::Chat => Mode::Chat,
            ModeArg::Reasoning => Mode::Reasoning,
        },
        adapter_prompt: args.adapter_prompt,
        ..Default::default()
    };
    let mut session = engine.session()?;
    let mut out = std::io::stdout().lock();
    if args.paths > 1 {
        let paths = session.generate_paths(&prompt, args.paths, &params)?;
        for (i, p) in paths.iter().enumerate() {
            writeln!(out, "--- path {i} ({:?}) ---", p.finish)?;
            writeln!(out, "{}", engine.tokenizer().decode(&p.tokens, true)?)?;
        }
        return Ok(());
    }
    session.generate(&prompt, &params, |t| {
        let _ = write!(out, "{}", t.text);
        let _ = out.flush();
        true
    })?;
    writeln!(out)?;
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

/// `--mode`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Chat,
    Reasoning,
}
