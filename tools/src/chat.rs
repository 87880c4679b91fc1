//! `kestrel chat`: interactive multi-turn chat. Each turn re-renders the conversation with the chat
//! template; the session's cache reuses every token of the previous turns that the base weights
//! encoded, so only the new user message is prefilled (an answer decoded with the reasoning
//! adapter is encoded again by the base, as every prompt is). With `--adapter`, `--switcher` and
//! `--mode auto` the switcher decides per turn whether the answer reasons.

use std::io::{BufRead, Write};

use kestrel::{GenerateParams, Message};

use crate::common::{report_switch, ModelArgs, ReasoningArgs, SamplingArgs};
use crate::tokenize::content_specials;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Optional system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Read special-token text in messages (e.g. `<|im_end|>`) as the special token itself (raw
    /// template parsing; trusted input only). By default it stays text.
    #[arg(long)]
    pub parse_special: bool,
    /// Maximum tokens per answer.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub reasoning: ReasoningArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.sampling.checked()?;
    args.model.check_path()?;
    args.reasoning.check(&args.model)?;
    let mut engine = args.model.load()?;
    args.reasoning.load_switcher(&mut engine)?;
    let engine = engine;
    let (mode, thinking) = args.reasoning.params(&engine)?;
    let mut session = engine.session()?;
    let mut history = Vec::new();
    if let Some(s) = &args.system {
        history.push(Message::new("system", s));
    }
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: args.sampling.sampling(),
        mode,
        thinking,
        ..Default::default()
    };
    eprintln!(
        "kestrel chat on {} — empty line or Ctrl-D to quit",
        engine.adapter_description()
    );
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("> ");
        let Some(line) = lines.next() else { break };
        let line = line?;
        if line.trim().is_empty() {
            break;
        }
        history.push(Message::new("user", &line));
        let prompt = engine.encode_chat_with(&history, content_specials(args.parse_special))?;
        let mut out = std::io::stdout().lock();
        let mut answer = String::new();
        let result = session.generate(&prompt, &params, |t| {
            answer.push_str(&t.text);
            let _ = write!(out, "{}", t.text);
            let _ = out.flush();
            true
        });
        writeln!(out)?;
        report_switch(&session);
        match result {
            Ok(_) => history.push(Message::new("assistant", answer.trim_end())),
            // A turn that no longer fits the context ends the chat with a clear message.
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
