//! `kestrel inspect`: config, quantization, tensor table, sizes and checksums of a `.kst` file.
//!
//! `--json` prints `kestrel_formats::inspect::summary_json` (stable: fixed key order, file order
//! of tensors, no paths or times). `--verify` also recomputes every CRC32 (reads the whole file).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use kestrel_formats::KstFile;
use serde_json::Value;

/// Show what a .kst file holds.
///
/// Prints the kind (model / adapter / head), header hash (the file's identity; adapters and
/// heads record their base's), model config, quantization and adapter/head sections, then one
/// line per tensor: name, dtype, shape, group size, bytes and CRC32 of its data array.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Text: kind, header hash (the file's identity; adapters/heads also show their base's), config,
quantization/adapter/head sections, one line per tensor (dtype, shape, group, bytes, CRC32).
--json: one stable document (fixed key order, tensors in file order, no paths or times).
Example: kestrel inspect qwen.kst --verify")]
pub struct Args {
    /// The .kst file.
    pub file: PathBuf,
    /// Print one stable JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Recompute and check every array's CRC32.
    #[arg(long)]
    pub verify: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let f = KstFile::open(&args.file)?;
    if args.verify {
        f.verify_checksums()?;
    }
    let s = kestrel_formats::inspect::summary_json(&f);
    let text = if args.json {
        serde_json::to_string_pretty(&s)? + "\n"
    } else {
        render(&args, &f, &s)?
    };
    // A closed pipe (`| head`) is not an error worth reporting.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn render(args: &Args, f: &KstFile, s: &Value) -> anyhow::Result<String> {
    let mut o = String::new();
    writeln!(
        o,
        "{}: {} file, header hash {}",
        args.file.display(),
        f.kind().as_str(),
        f.header_hash()
    )?;
    if let Some(b) = f.base_hash() {
        writeln!(o, "base model hash: {b}")?;
    }
    if let Ok(c) = f.config() {
        writeln!(
            o,
            "config: {:?}, vocab {}, hidden {}, intermediate {}, {} layers, {} heads / {} kv heads × {}, rope θ {}, eps {}, tied {}, qkv bias {}",
            c.arch, c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
            c.num_key_value_heads, c.head_dim, c.rope_theta, c.rms_norm_eps, c.tie_word_embeddings, c.attention_bias
        )?;
        if !c.rope_scaling.is_default() {
            let (_, a) = c.rope_tables();
            writeln!(
                o,
                "rope scaling: {} (attention factor {a}) {}",
                c.rope_scaling.name(),
                serde_json::to_string(&c.rope_scaling).unwrap_or_default()
            )?;
        }
    }
    if let Value::Object(meta) = &s["meta"] {
        for (k, v) in meta {
            writeln!(o, "{k}: {v}")?;
        }
    }
    let text = |k: &str| {
        s[k]["bytes"]
            .as_u64()
            .map_or("none".to_string(), |b| format!("{b} bytes"))
    };
    writeln!(
        o,
        "tokenizer.json: {}, chat template: {}",
        text("tokenizer"),
        text("chat_template")
    )?;
    writeln!(o)?;
    let width = f.tensor_names().map(str::len).max().unwrap_or(4).max(4);
    writeln!(
        o,
        "{:<width$}  {:<5} {:<16} {:>5} {:>12}  crc32",
        "name", "dtype", "shape", "group", "bytes"
    )?;
    for t in s["tensors"].as_array().into_iter().flatten() {
        let shape = format!("{}", t["shape"]).replace(',', "×");
        let group = t["group_size"]
            .as_u64()
            .map_or("-".into(), |g| g.to_string());
        writeln!(
            o,
            "{:<width$}  {:<5} {:<16} {:>5} {:>12}  {}",
            t["name"].as_str().unwrap_or(""),
            t["dtype"].as_str().unwrap_or(""),
            shape,
            group,
            t["bytes"].as_u64().unwrap_or(0),
            t["crc32"]["data"].as_str().unwrap_or("")
        )?;
    }
    let tot = &s["totals"];
    writeln!(
        o,
        "\n{} tensors, {} parameters, {:.2} MiB of tensor data; by dtype: {}{}",
        tot["tensors"],
        tot["parameters"],
        tot["bytes"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64,
        tot["bytes_by_dtype"],
        if args.verify { "; checksums OK" } else { "" }
    )?;
    Ok(o)
}
