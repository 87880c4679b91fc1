//! `kestrel synth`: a random-weight `.kst` with a real model's shapes (for benchmarks).

use std::path::PathBuf;

use kestrel_formats::synth::{preset, synth_model};

use crate::convert::{progress, QuantArgs};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Like {
    #[value(name = "qwen2.5-0.5b")]
    Qwen05b,
    #[value(name = "qwen2.5-1.5b")]
    Qwen15b,
    #[value(name = "qwen2.5-7b")]
    Qwen7b,
    #[value(name = "smollm2-135m")]
    Smollm2,
}

/// Write a random-weight model with a real model's exact shapes.
///
/// Weights are generated directly in the storage layout (random packed nibbles and plausible
/// scales), so even a 7B file takes seconds. The file embeds a minimal byte-level BPE
/// tokenizer (256 byte tokens + <|endoftext|>, <|im_start|>, <|im_end|>) and a ChatML template,
/// so text commands run; the output is noise. Use it for throughput and memory benchmarks.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Weights are generated directly in the storage layout (random nibbles, plausible scales), so a 7B
file takes well under a minute. The file embeds a minimal byte-level BPE tokenizer (256 byte
tokens + <|endoftext|>=256, <|im_start|>=257, <|im_end|>=258) and a ChatML template: text
commands run, the output is noise. For throughput and memory benchmarks.

Example: kestrel synth --like qwen2.5-7b -o /tmp/q7.kst && kestrel bench /tmp/q7.kst")]
pub struct Args {
    /// Which model's shapes to use.
    #[arg(long, value_enum)]
    pub like: Like,
    /// Output .kst file.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub quant: QuantArgs,
    /// Random seed (same seed, same file).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let name = match args.like {
        Like::Qwen05b => "qwen2.5-0.5b",
        Like::Qwen15b => "qwen2.5-1.5b",
        Like::Qwen7b => "qwen2.5-7b",
        Like::Smollm2 => "smollm2-135m",
    };
    let cfg = preset(name)?;
    let pb = progress::bar(name);
    let t0 = std::time::Instant::now();
    let r = synth_model(
        &cfg,
        &args.output,
        &args.quant.options(),
        args.seed,
        &mut progress::callback(&pb),
    );
    pb.finish_and_clear();
    r?;
    let bytes = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "wrote {} ({:.1} MiB) in {:.1} s",
        args.output.display(),
        bytes as f64 / (1 << 20) as f64,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
