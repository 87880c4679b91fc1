//! Embed the engine: load a model, stream a chat answer, cancel from another thread if it runs long.
//!
//! ```sh
//! cargo run --release -p kestrel-engine --example generate -- smollm2.kst "What is 12 * 7?"
//! ```

use std::io::Write;

use kestrel::{CancelToken, Engine, EngineOptions, GenerateParams, Message, Sampling};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), kestrel::EngineError> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "smollm2.kst".into());
    let question = args
        .next()
        .unwrap_or_else(|| "What is the capital of France?".into());

    let engine = Engine::load(&model, EngineOptions::default())?;
    eprintln!("running on {}", engine.adapter_description());
    let prompt = engine.encode_chat(&[Message::new("user", &question)])?;

    // Cancel after 30 s from a watchdog thread; the stream then yields `EngineError::Cancelled`.
    let cancel = CancelToken::new();
    let watchdog = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(30));
        watchdog.cancel();
    });

    let params = GenerateParams {
        max_tokens: 128,
        sampling: Sampling {
            temperature: 0.7,
            top_p: 0.9,
            seed: 42,
            ..Sampling::default()
        },
        cancel: Some(cancel),
        ..GenerateParams::default()
    };
    let mut session = engine.session()?;
    for token in session.stream(&prompt, &params)? {
        print!("{}", token?.text);
        let _ = std::io::stdout().flush();
    }
    println!();
    let t = session.timings();
    eprintln!(
        "{} prompt tokens, {} generated",
        t.prompt_tokens, t.generated
    );
    Ok(())
}
