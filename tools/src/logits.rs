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
    /// With --adapter: encode the first --prompt-len tokens with the base weights and the rest with
    /// the adapter on over that KV (KV sharing). Without it, the adapter is on for every token.
    #[arg(long, requires = "adapter", requires = "prompt_len")]
    pub shared_kv: bool,
    /// Tokens of the prompt (encoded by the base) for --shared-kv.
    #[arg(long)]
    pub prompt_len: Option<usize>,
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
    let adapter = engine.adapters().next().map(|(id, _)| id);
    let base_prefix = if args.shared_kv {
        args.prompt_len.unwrap_or(0)
    } else {
        0
    };
    let logits = session.logits_with(&tokens, adapter, base_prefix)?;
    let v = engine.config().vocab_size;
    kestrel_formats::npy::write_f32(&args.out, &[tokens.len(), v], &logits)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {} x {} logits to {}",
        tokens.len(),
        v,
        args.out.display()
    );
    Ok(())
}
