//! `kestrel tokenize`: print a text's token ids on one line (comma-separated).

use std::io::Write;

use anyhow::Context;
use kestrel::{encode_chat, ChatTemplate, ContentSpecials, Message};
use kestrel_formats::KstFile;

#[derive(clap::Args)]
pub struct Args {
    /// The .kst model file.
    pub model: std::path::PathBuf,
    /// Text to tokenize.
    #[arg(long)]
    pub text: String,
    /// Do not add the tokenizer's special tokens (e.g. BOS).
    #[arg(long)]
    pub no_special: bool,
    /// Tokenize the text as a user message rendered by the model's chat template (with the
    /// assistant's opening appended): the exact ids `generate --chat` feeds the model. Special-
    /// token text inside the message (e.g. `<|im_end|>`) stays text unless --parse-special.
    #[arg(long)]
    pub chat: bool,
    /// Optional system message (with --chat).
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// With --chat: read special-token text inside the message as the special token itself
    /// (raw template parsing, as transformers' apply_chat_template does; trusted input only).
    #[arg(long, requires = "chat")]
    pub parse_special: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Tokenizing needs no GPU: read the embedded tokenizer straight from the file.
    let file =
        KstFile::open(&args.model).with_context(|| format!("opening {}", args.model.display()))?;
    let json = file
        .tokenizer_json()
        .context("the model file has no embedded tokenizer")?;
    let tok = kestrel::Tokenizer::from_json(json)?;
    let ids = if args.chat {
        let template = ChatTemplate::from_kst(&file, file.config()?, &tok)?
            .context("the model file has no chat template (drop --chat)")?;
        let mut msgs = Vec::new();
        if let Some(s) = &args.system {
            msgs.push(Message::new("system", s));
        }
        msgs.push(Message::new("user", &args.text));
        encode_chat(&tok, &template, &msgs, content_specials(args.parse_special))?
    } else {
        tok.encode(&args.text, !args.no_special)?
    };
    let line: Vec<String> = ids.iter().map(u32::to_string).collect();
    writeln!(std::io::stdout(), "{}", line.join(","))?;
    Ok(())
}

/// `--parse-special` as the engine's option.
pub fn content_specials(parse_special: bool) -> ContentSpecials {
    if parse_special {
        ContentSpecials::Parse
    } else {
        ContentSpecials::AsText
    }
}
