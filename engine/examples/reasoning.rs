//! The paper's request flow, embedded: a W4 base, a LoRA reasoning adapter, a switcher that
//! decides per prompt whether to reason, N reasoning paths decoded as one batch over the shared
//! prompt KV with a thinking budget, a verifier that scores them, and a weighted vote.
//!
//! ```sh
//! cargo run --release -p kestrel-engine --example reasoning -- \
//!     model.kst reasoning.kst switcher.kst verifier.kst "What is 17 * 23?"
//! ```

use kestrel::{
    aggregate, final_answer, Aggregation, Engine, EngineOptions, GenerateParams, Message, Mode,
    Sampling, ThinkingBudget,
};

const THINK_END: &str = "</think>";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), kestrel::EngineError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, adapter, switcher, verifier, question] = args.as_slice() else {
        eprintln!("usage: reasoning MODEL.kst ADAPTER.kst SWITCHER.kst VERIFIER.kst QUESTION");
        std::process::exit(2);
    };
    let mut engine = Engine::load(model, EngineOptions::default())?;
    engine.load_adapter(adapter)?;
    engine.load_head(switcher)?;
    engine.load_head(verifier)?;
    let engine = engine;
    let prompt = engine.encode_chat(&[Message::new("user", question)])?;
    let mut session = engine.session()?;

    // Up to 1024 new tokens (less if the context is smaller), 3/4 of them for thinking.
    let max_tokens = 1024.min(engine.max_context().saturating_sub(prompt.len()));
    let params = GenerateParams {
        max_tokens,
        mode: Mode::Auto,
        thinking: Some(ThinkingBudget {
            max_tokens: max_tokens * 3 / 4,
            end: engine.tokenizer().encode(THINK_END, false)?,
        }),
        sampling: Sampling {
            temperature: 0.7,
            top_p: 0.95,
            seed: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    // The switcher reads the prompt the base weights encode; the paths reuse that KV.
    let paths = session.generate_paths(&prompt, 4, &params)?;
    if let Some(d) = session.last_switch() {
        eprintln!("switcher: {:?} (p = {:.2})", d.mode, d.reasoning_prob());
    }
    let mut answers = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let text = engine.tokenizer().decode(&p.tokens, false)?;
        let answer = final_answer(&text, Some(THINK_END));
        eprintln!(
            "path {i}: verifier {:.3}{} → {answer}",
            p.score.map_or(f32::NAN, kestrel::sigmoid),
            if p.thinking_forced {
                " (budget forced)"
            } else {
                ""
            }
        );
        answers.push(answer);
    }
    let scores: Vec<Option<f32>> = paths.iter().map(|p| p.score).collect();
    let choice = aggregate(&answers, &scores, Aggregation::WeightedVote)?;
    println!("{}", choice.answer);
    Ok(())
}
