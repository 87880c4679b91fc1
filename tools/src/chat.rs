//! `kestrel chat`: interactive multi-turn chat. Each turn re-renders the conversation with the chat
//! template; the session's cache reuses every token of the previous turns that the base weights
//! encoded, so only the new user message is prefilled (an answer decoded with the reasoning
//! adapter is encoded again by the base, as every prompt is). With `--adapter`, `--switcher` and
//! `--mode auto` the switcher decides per turn whether the answer reasons.
//!
//! A bad turn never ends the conversation: a line that is not UTF-8 or does not fit the context
//! is reported and dropped, and when the conversation outgrows the context its oldest turns slide
//! out (said on stderr). `/reset`, `/save FILE` and `/exit` are commands.

use std::io::{BufRead, Write};

use anyhow::Context;
use kestrel::{Engine, FinishReason, GenerateParams, Message};

use crate::common::{report_switch, ModelArgs, ReasoningArgs, SamplingArgs};
use crate::tokenize::content_specials;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Optional system message (kept when old turns slide out of the context).
    #[arg(long)]
    pub system: Option<String>,
    /// Read special-token text in messages (e.g. `<|im_end|>`) as the special token itself (raw
    /// template parsing; trusted input only). By default it stays text.
    #[arg(long)]
    pub parse_special: bool,
    /// Maximum tokens per answer (an answer cut off there is marked so).
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub reasoning: ReasoningArgs,
}

const HELP: &str = "commands: /reset (forget the conversation), /save FILE (write it as JSON), \
                    /exit (or Ctrl-D)";

pub fn run(args: Args) -> anyhow::Result<()> {
    args.sampling.checked()?;
    args.model.check_path()?;
    args.reasoning.check(&args.model)?;
    let mut engine = args.model.load()?;
    args.reasoning.load_switcher(&mut engine)?;
    let engine = engine;
    let (mode, thinking) = args.reasoning.params(&engine)?;
    let mut session = engine.session()?;
    let system: Vec<Message> = args
        .system
        .iter()
        .map(|s| Message::new("system", s))
        .collect();
    let mut history = system.clone();
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: args.sampling.sampling(),
        mode,
        thinking,
        ..Default::default()
    };
    eprintln!("kestrel chat on {} — {HELP}", engine.adapter_description());
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut raw = Vec::new();
    loop {
        eprint!("> ");
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        let Ok(line) = std::str::from_utf8(&raw) else {
            eprintln!("error: that line is not valid UTF-8; it was dropped");
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history.clone_from(&system);
                session.reset();
                eprintln!("(conversation reset)");
                continue;
            }
            "/help" => {
                eprintln!("{HELP}");
                continue;
            }
            cmd if cmd.starts_with("/save") => {
                match save(cmd["/save".len()..].trim(), &history) {
                    Ok(file) => eprintln!("(saved {} messages to {file})", history.len()),
                    Err(e) => eprintln!("error: {e:#}"),
                }
                continue;
            }
            _ => {}
        }
        history.push(Message::new("user", line));
        let prompt = match fit(&engine, &mut history, system.len(), &args) {
            Ok(prompt) => prompt,
            Err(e) => {
                history.pop();
                eprintln!("error: {e:#}; the message was dropped");
                continue;
            }
        };
        let mut out = std::io::stdout().lock();
        let mut answer = String::new();
        let result = session.generate(&prompt, &params, |t| {
            answer.push_str(&t.text);
            write!(out, "{}", t.text).and_then(|()| out.flush()).is_ok()
        });
        writeln!(out)?;
        report_switch(&session);
        match result {
            Ok((_, finish)) => {
                if finish == FinishReason::MaxTokens {
                    eprintln!("(answer cut off at --max-tokens {})", args.max_tokens);
                }
                history.push(Message::new("assistant", answer.trim_end()));
            }
            Err(e) => {
                history.pop();
                eprintln!("error: {e}; the turn was dropped");
            }
        }
    }
    Ok(())
}

/// The prompt of `history`, after sliding its oldest turns (those after the `keep` leading
/// system messages) out until it and an answer of `--max-tokens` fit the context. When even the
/// last message alone does not fit, `history` is left as it was and this is an error.
fn fit(
    engine: &Engine,
    history: &mut Vec<Message>,
    keep: usize,
    args: &Args,
) -> anyhow::Result<Vec<u32>> {
    let limit = engine.max_context();
    let mut candidate = history.clone();
    let mut dropped = 0;
    loop {
        let prompt = engine.encode_chat_with(&candidate, content_specials(args.parse_special))?;
        let needed = prompt.len().saturating_add(args.max_tokens);
        if needed <= limit {
            if dropped > 0 {
                eprintln!("(the context is full: the {dropped} oldest messages slid out)");
            }
            *history = candidate;
            return Ok(prompt);
        }
        if candidate.len() <= keep + 1 {
            anyhow::bail!(
                "this message needs {} tokens and an answer up to {} more, but the context \
                 holds {limit}",
                prompt.len(),
                args.max_tokens
            );
        }
        // Whole turns slide out (a user message and its answer), so the conversation still
        // opens with a user message.
        candidate.remove(keep);
        dropped += 1;
        if candidate.len() > keep + 1 && candidate[keep].role == "assistant" {
            candidate.remove(keep);
            dropped += 1;
        }
    }
}

/// Writes the conversation as `{"messages": [...]}` to `file`; returns the path written.
fn save(file: &str, history: &[Message]) -> anyhow::Result<String> {
    if file.is_empty() {
        anyhow::bail!("/save needs a file name: /save chat.json");
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({ "messages": history }))?;
    std::fs::write(file, json + "\n").with_context(|| format!("writing {file}"))?;
    Ok(file.to_string())
}
