//! `kestrel logits`: write f32 `[T, vocab]` logits for given tokens to a `.npy` file.

use anyhow::Context;

use crate::common::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Comma-separated token ids, e.g. 1,2,3.
    #[arg(long, value_delimiter = ',', conflicts_with = "prompt")]
    pub tokens: Option<Vec<u32>>,
    /// Text to tokenize instead of --tokens.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Output .npy file (f32, shape [T, vocab]).
    #[arg(long)]
    pub out: std::path::PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let engine = args.model.load()?;
    let tokens = match (&args.tokens, &args.prompt) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => engine.encode(p)?,
        (None, None) => anyhow::bail!("give --tokens or --prompt"),
    };
    let mut session = engine.session()?;
    let logits = session.logits(&tokens)?;
    let v = engine.config().vocab_size;
    kestrel::npy::write_f32(&args.out, &[tokens.len(), v], &logits)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {} x {} logits to {}", tokens.len(), v, args.out.display());
    Ok(())
}
