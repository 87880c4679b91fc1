//! `kestrel` — the command-line tool. One module per subcommand; each owns its `Args`.
//! Errors print as one line on stderr and exit with code 1.

use clap::{Parser, Subcommand};

mod bench;
mod chat;
mod common;
mod convert;
mod eval;
mod export;
mod generate;
mod inspect;
mod logits;
mod synth;
mod tokenize;
mod train_head;

#[derive(Parser)]
#[command(
    name = "kestrel",
    version,
    about = "Kestrel: on-device reasoning engine (Qwen2.5 / Llama, W4A16 on wgpu)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert an HF checkpoint dir, a GGUF file, a PEFT adapter or a head dir into a .kst file.
    Convert(convert::Args),
    /// Show a .kst file's config, quantization, tensor table, sizes and checksums.
    Inspect(inspect::Args),
    /// Write a .kst model back out as an HF directory with dequantized f32 weights.
    Export(export::Args),
    /// Write a random-weight .kst with a real model's shapes (for benchmarks).
    Synth(synth::Args),
    /// Generate text from a prompt, streaming tokens to stdout.
    Generate(generate::Args),
    /// Interactive multi-turn chat using the model's chat template.
    Chat(chat::Args),
    /// Write f32 [T, vocab] logits for the given tokens to a .npy file.
    Logits(logits::Args),
    /// Print the token ids of a text, on one line.
    Tokenize(tokenize::Args),
    /// Measure prefill/decode throughput, latency and memory against the device's roofline.
    Bench(bench::Args),
    /// Measure accuracy, tokens and latency of a task file per configuration (mode × paths ×
    /// select × thinking budget).
    Eval(eval::Args),
    /// Fit a switcher or verifier head (logistic regression on the engine's own features) and
    /// write it as a head .kst.
    TrainHead(train_head::Args),
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(a) => convert::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Export(a) => export::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Logits(a) => logits::run(a),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Eval(a) => eval::run(a),
        Command::TrainHead(a) => train_head::run(a),
    };
    if let Err(e) = result {
        // One line: the error and its causes, joined.
        let msg = e
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
