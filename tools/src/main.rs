//! `kestrel` — the command-line tool. One module per subcommand; each owns its `Args`.
//! Errors print as one line on stderr and exit with code 1, usage errors included; `--help` and
//! `--version` exit 0.

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
    // SIGINT/SIGTERM/SIGHUP end the process without unwinding, so no writer's Drop runs: remove
    // the partial files of an interrupted conversion here (convert, synth and train-head write
    // `.kst` files). If the handler cannot be installed, the default behaviour stays.
    let _ = ctrlc::set_handler(|| {
        kestrel_formats::remove_partial_files();
        std::process::exit(130);
    });
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
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
        // A closed stdout (`kestrel tokenize ... | head -1`) is how a reader says it has seen
        // enough: a normal end, as for any Unix filter.
        if is_broken_pipe(&e) {
            std::process::exit(0);
        }
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, each cause once: library errors often repeat their
/// source in their own message, which a plain join would print two or three times.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if msg.contains(cause.as_str()) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&cause);
    }
    printable(&msg.replace('\n', " "))
}

/// Control characters (a `\r`, an escape sequence) from a path or an argument would break the
/// one-line promise on a terminal or rewrite it: print them escaped.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A command-line usage error as one line (exit 1); help and version requests print as clap
/// renders them (exit 0).
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // A bare `kestrel` is a usage error too: one line that names the commands.
        use clap::CommandFactory;
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        eprintln!(
            "error: no command given (one of: {}); see `kestrel --help`",
            names.join(", ")
        );
        std::process::exit(1);
    }
    // clap's message is several lines (the error, a list, a tip, the usage): keep what comes
    // before the usage, as one line.
    let rendered = e.render().to_string();
    let text: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let text = text.join(" ");
    let text = text.trim_start_matches("error: ");
    let text = if text.is_empty() {
        "invalid arguments"
    } else {
        text
    };
    eprintln!("error: {}; see `kestrel --help`", printable(text));
    std::process::exit(1);
}
