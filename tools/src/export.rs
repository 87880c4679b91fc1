//! `kestrel export`: a `.kst` model → an HF directory with dequantized f32 weights.

use std::path::PathBuf;

use kestrel_formats::KstFile;

use crate::convert::progress;

/// Write a .kst model back out as an HF directory.
///
/// Output: config.json, model.safetensors (every tensor F32; W4/W8 dequantized exactly),
/// tokenizer.json and tokenizer_config.json (with the chat template) when the file embeds them.
/// Useful to compare against transformers, or to re-quantize with other options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes config.json, model.safetensors (all tensors F32, W4/W8 dequantized exactly),
tokenizer.json and tokenizer_config.json (chat_template) when embedded.
Example: kestrel export qwen.kst -o qwen-hf/   (then load qwen-hf/ with transformers)")]
pub struct Args {
    /// The .kst model file.
    pub file: PathBuf,
    /// Output directory (created if missing; files in it are overwritten).
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let f = KstFile::open(&args.file)?;
    let pb = progress::bar("export");
    let r = kestrel_formats::export_hf(&f, &args.output, &mut progress::callback(&pb));
    pb.finish_and_clear();
    r?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
