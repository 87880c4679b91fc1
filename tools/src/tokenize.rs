//! `kestrel tokenize`: print a text's token ids on one line (comma-separated).

use anyhow::Context;
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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Tokenizing needs no GPU: read the embedded tokenizer straight from the file.
    let file =
        KstFile::open(&args.model).with_context(|| format!("opening {}", args.model.display()))?;
    let json = file
        .tokenizer_json()
        .context("the model file has no embedded tokenizer")?;
    let tok = kestrel::Tokenizer::from_json(json)?;
    let ids = tok.encode(&args.text, !args.no_special)?;
    let line: Vec<String> = ids.iter().map(u32::to_string).collect();
    println!("{}", line.join(","));
    Ok(())
}
