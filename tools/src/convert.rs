//! `kestrel convert`: an HF checkpoint dir, a GGUF file, a PEFT adapter or a head dir → `.kst`.
//!
//! The input kind is auto-detected (`kestrel_formats::detect_input`). Adapters and heads need
//! `--base model.kst` (they are checked against it and record its header hash). The output is
//! re-opened and its checksums verified before the command reports success.

pub mod progress;

use std::path::PathBuf;

use anyhow::{bail, Context};
use kestrel_formats::{detect_input, ConvertOptions, InputKind, KstFile, Scheme, WeightDType};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DtypeArg {
    W4,
    W8,
    F16,
    F32,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SchemeArg {
    Sym,
    Asym,
}

/// Options shared by `convert` and `synth`.
#[derive(clap::Args, Debug, Clone)]
pub struct QuantArgs {
    /// Storage of linear layers. w4/w8 also store embed_tokens/lm_head as w8; norms and biases
    /// are always f32. GGUF Q4_0/Q4_1/Q8_0 tensors keep their exact values.
    #[arg(long, value_enum, default_value = "w4")]
    pub dtype: DtypeArg,
    /// Quantization group size along K (input features): 32, 64 or 128.
    #[arg(long, default_value_t = 32, value_parser = parse_group)]
    pub group_size: usize,
    /// W4 scheme: sym stores (q-8)·s, asym stores q·s + min (one more f16 per group).
    #[arg(long, value_enum, default_value = "sym")]
    pub scheme: SchemeArg,
}

fn parse_group(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(g @ (32 | 64 | 128)) => Ok(g),
        _ => Err(format!("`{s}` is not 32, 64 or 128")),
    }
}

impl QuantArgs {
    pub fn options(&self) -> ConvertOptions {
        ConvertOptions {
            dtype: match self.dtype {
                DtypeArg::W4 => WeightDType::W4,
                DtypeArg::W8 => WeightDType::W8,
                DtypeArg::F16 => WeightDType::F16,
                DtypeArg::F32 => WeightDType::F32,
            },
            group_size: self.group_size,
            scheme: match self.scheme {
                SchemeArg::Sym => Scheme::Sym,
                SchemeArg::Asym => Scheme::Asym,
            },
        }
    }
}

const HELP: &str = "\
Input kinds (auto-detected):
  a .gguf file                     model (F32/F16/BF16/Q4_0/Q4_1/Q8_0; qwen2, llama)
  a dir with adapter_config.json   PEFT LoRA adapter (needs --base)
  a dir with head.json             switcher/verifier head (needs --base)
  a dir with config.json           HF model (model.safetensors, or shards + index)

Examples:
  kestrel convert ./Qwen2.5-0.5B-Instruct -o qwen.kst
  kestrel convert ./Qwen2.5-0.5B-Instruct -o qwen-g64.kst --group-size 64 --scheme asym
  kestrel convert smollm2.Q4_1.gguf -o smollm2.kst
  kestrel convert ./my-lora -o lora.kst --base qwen.kst
  kestrel inspect qwen.kst --verify";

/// Convert a checkpoint into one .kst file.
#[derive(clap::Args, Debug)]
#[command(after_help = HELP)]
pub struct Args {
    /// Input checkpoint: HF dir, .gguf file, PEFT adapter dir or head dir.
    pub input: PathBuf,
    /// Output .kst file (written atomically: it appears only when complete).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub quant: QuantArgs,
    /// Base model .kst that an adapter or head belongs to (its shapes are checked, its header
    /// hash recorded).
    #[arg(long)]
    pub base: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let kind = detect_input(&args.input)?;
    let opts = args.quant.options();
    let base = || -> anyhow::Result<KstFile> {
        let Some(b) = &args.base else {
            bail!(
                "converting a {} needs --base model.kst",
                if kind == InputKind::Peft {
                    "LoRA adapter"
                } else {
                    "head"
                }
            );
        };
        KstFile::open(b).with_context(|| format!("opening base {}", b.display()))
    };
    let pb = progress::bar(&format!("{kind:?}"));
    let mut cb = progress::callback(&pb);
    let t0 = std::time::Instant::now();
    let result = match kind {
        InputKind::Gguf => {
            kestrel_formats::gguf::convert_gguf(&args.input, &args.output, &opts, &mut cb)
        }
        InputKind::Hf => {
            note_unrecognised_keys(&args.input.join("config.json"));
            kestrel_formats::convert_hf(&args.input, &args.output, &opts, &mut cb)
        }
        InputKind::Peft => {
            kestrel_formats::convert_peft(&args.input, &base()?, &args.output, &mut cb)
        }
        InputKind::Head => {
            kestrel_formats::convert_head(&args.input, &base()?, &args.output, &mut cb)
        }
    };
    pb.finish_and_clear();
    result.with_context(|| format!("converting {}", args.input.display()))?;
    let f = KstFile::open(&args.output)?;
    f.verify_checksums()?;
    let bytes = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "wrote {} ({} {}, {} tensors, {:.1} MiB) in {:.1} s",
        args.output.display(),
        f.kind().as_str(),
        f.header_hash(),
        f.tensor_names().count(),
        bytes as f64 / (1 << 20) as f64,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Names the `config.json` keys the importer does not know (it assumes they do not change the
/// math) on stderr, so that a key that does is never passed over in silence.
fn note_unrecognised_keys(config: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(config) else {
        return; // the importer reports a missing or unreadable config itself
    };
    let keys = kestrel_formats::config::unrecognised_hf_config_keys(&text);
    if !keys.is_empty() {
        eprintln!(
            "note: config.json keys this importer does not know (assumed not to change the \
             math; see formats/FORMAT.md): {}",
            keys.join(", ")
        );
    }
}
