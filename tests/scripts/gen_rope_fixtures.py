"""RoPE-variant reference fixtures (`tests/fixtures/rope/`), written with transformers 5.x.

Contract:
- Two tiny random bases (`qwen2/`, `llama/`: `model.safetensors` f32, `tokenizer.json` and
  `tokenizer_config.json` copied from `tiny/qwen2_tied_gqa/hf`) and, per RoPE case, the
  `config.json` transformers' `save_pretrained` writes (the transformers-5 `rope_parameters`
  form) in `cases/<case>/config.json`, with the logits of one forward over `SEQ_LEN` fixed ids
  (rows `ROWS` only, to keep the files small) in `cases/<case>/logits.npy` (`<f4`).
  Cases: default (θ = 1e6), linear, dynamic, llama3 and yarn; for llama3 and yarn
  `original_max_position_embeddings` < `SEQ_LEN`, so positions past it are checked.
- `real_configs.json`: published `config.json` values of real checkpoints (legacy form, as
  their hub files are) with transformers' `inv_freq` (`[D/2]`, exact f32 values as JSON
  numbers) and `attention_scaling` from the model's rotary-embedding class.
- `ref.json`: the manifest (seq ids, rows, per-case files and inv_freq, versions).
Deterministic: seeded, CPU float32, eager attention; rerunning rewrites identical files.

Run: /work/.venv-ml/bin/python tests/scripts/gen_rope_fixtures.py
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_common import deterministic, save_npy, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "fixtures"
OUT = ROOT / "rope"
TOKENIZER_DIR = ROOT / "tiny" / "qwen2_tied_gqa" / "hf"
VOCAB = 320
SEQ_LEN = 96
ROWS = list(range(3, SEQ_LEN, 4)) + [SEQ_LEN - 2]  # 24 + 1 rows, the last two positions included
SEED = 4242

BASE = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=128,
    tie_word_embeddings=True,
    bos_token_id=317,
    eos_token_id=319,
)

# (case, arch, rope_parameters) — transformers-5 form; theta inside the dict.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("default", "qwen2", {"rope_type": "default", "rope_theta": 1_000_000.0}),
    ("linear", "qwen2", {"rope_type": "linear", "factor": 2.0, "rope_theta": 10_000.0}),
    ("dynamic", "qwen2", {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10_000.0}),
    (
        "yarn",
        "qwen2",
        {
            "rope_type": "yarn",
            "factor": 4.0,
            "original_max_position_embeddings": 32,
            "rope_theta": 10_000.0,
        },
    ),
    (
        "llama3",
        "llama",
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
            "rope_theta": 500_000.0,
        },
    ),
]

# Published config.json values (legacy form, as on the hub).
QWEN_COMMON = dict(
    architectures=["Qwen2ForCausalLM"],
    model_type="qwen2",
    attention_dropout=0.0,
    bos_token_id=151643,
    eos_token_id=151645,
    hidden_act="silu",
    initializer_range=0.02,
    max_position_embeddings=32768,
    rms_norm_eps=1e-06,
    rope_theta=1000000.0,
    torch_dtype="bfloat16",
    use_cache=True,
    use_sliding_window=False,
)
LLAMA_COMMON = dict(
    architectures=["LlamaForCausalLM"],
    model_type="llama",
    attention_bias=False,
    attention_dropout=0.0,
    hidden_act="silu",
    initializer_range=0.02,
    mlp_bias=False,
    pretraining_tp=1,
    rms_norm_eps=1e-05,
    torch_dtype="bfloat16",
    use_cache=True,
)
REAL: dict[str, dict[str, Any]] = {
    "Qwen2.5-0.5B-Instruct": dict(
        QWEN_COMMON, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_window_layers=21,
        sliding_window=32768, tie_word_embeddings=True, vocab_size=151936,
    ),
    "Qwen2.5-1.5B-Instruct": dict(
        QWEN_COMMON, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, max_window_layers=21,
        sliding_window=32768, tie_word_embeddings=True, vocab_size=151936,
    ),
    "Qwen2.5-7B-Instruct": dict(
        QWEN_COMMON, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, max_window_layers=28,
        sliding_window=131072, tie_word_embeddings=False, vocab_size=152064,
    ),
    "Qwen2.5-7B-Instruct-YaRN": dict(
        QWEN_COMMON, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, max_window_layers=28,
        sliding_window=131072, tie_word_embeddings=False, vocab_size=152064,
        rope_scaling={"factor": 4.0, "original_max_position_embeddings": 32768, "type": "yarn"},
    ),
    "SmolLM2-135M-Instruct": dict(
        LLAMA_COMMON, bos_token_id=1, eos_token_id=2, pad_token_id=2, is_llama_config=True,
        rope_interleaved=False, hidden_size=576, intermediate_size=1536,
        max_position_embeddings=8192, num_attention_heads=9, num_hidden_layers=30,
        num_key_value_heads=3, rope_scaling=None, rope_theta=100000, tie_word_embeddings=True,
        vocab_size=49152,
    ),
    "SmolLM2-360M-Instruct": dict(
        LLAMA_COMMON, bos_token_id=1, eos_token_id=2, pad_token_id=2, is_llama_config=True,
        rope_interleaved=False, hidden_size=960, intermediate_size=2560,
        max_position_embeddings=8192, num_attention_heads=15, num_hidden_layers=32,
        num_key_value_heads=5, rope_scaling=None, rope_theta=100000, tie_word_embeddings=True,
        vocab_size=49152,
    ),
    "SmolLM2-1.7B-Instruct": dict(
        LLAMA_COMMON, bos_token_id=1, eos_token_id=2, pad_token_id=2, is_llama_config=True,
        rope_interleaved=False, hidden_size=2048, intermediate_size=8192,
        max_position_embeddings=8192, num_attention_heads=32, num_hidden_layers=24,
        num_key_value_heads=32, rope_scaling=None, rope_theta=130000, tie_word_embeddings=True,
        vocab_size=49152,
    ),
    "Llama-3.2-1B": dict(
        LLAMA_COMMON, bos_token_id=128000, eos_token_id=128001, head_dim=64, hidden_size=2048,
        intermediate_size=8192, max_position_embeddings=131072, num_attention_heads=32,
        num_hidden_layers=16, num_key_value_heads=8, rope_theta=500000.0,
        rope_scaling={
            "factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3",
        },
        tie_word_embeddings=True, vocab_size=128256,
    ),
}

CLASSES = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}


def rotary(arch: str, cfg_dict: dict[str, Any]) -> tuple[list[float], float]:
    """transformers' inv_freq and attention_scaling for a config.json dict."""
    cfg_cls, _ = CLASSES[arch]
    cfg = cfg_cls(**{k: v for k, v in cfg_dict.items() if k not in ("architectures", "model_type")})
    mod = sys.modules[CLASSES[arch][1].__module__]
    emb = getattr(mod, "Qwen2RotaryEmbedding" if arch == "qwen2" else "LlamaRotaryEmbedding")(cfg)
    return [float(x) for x in emb.inv_freq.tolist()], float(emb.attention_scaling)


def random_weights(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.6, 1.4)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
            elif "embed_tokens" in name:
                p.normal_(0.0, 1.0)
            else:
                p.normal_(0.0, 0.3)


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    deterministic(SEED)
    seq = torch.randint(0, VOCAB - 3, (SEQ_LEN,), generator=torch.Generator().manual_seed(SEED))
    bases: dict[str, dict[str, torch.Tensor]] = {}
    for arch in ("qwen2", "llama"):
        cfg_cls, model_cls = CLASSES[arch]
        torch.manual_seed(SEED + len(bases))
        model = model_cls(cfg_cls(**BASE, attn_implementation="eager")).eval()
        random_weights(model)
        state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
        bases[arch] = state
        d = OUT / arch
        d.mkdir()
        save_file(state, d / "model.safetensors", metadata={"format": "pt"})
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(TOKENIZER_DIR / f, d / f)
    manifest: dict[str, Any] = {
        "seq_ids": seq.tolist(),
        "rows": ROWS,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "cases": {},
        "real_configs": "real_configs.json",
    }
    for case, arch, rope in CASES:
        cfg_cls, model_cls = CLASSES[arch]
        cfg = cfg_cls(**BASE, rope_parameters=dict(rope), attn_implementation="eager")
        model = model_cls(cfg).eval()
        model.load_state_dict(bases[arch], strict=False)
        model.tie_weights()
        d = OUT / "cases" / case
        d.mkdir(parents=True)
        model.config.save_pretrained(d)
        with torch.no_grad():
            logits = model(seq[None]).logits[0]
        save_npy(d / "logits.npy", logits[ROWS], "<f4")
        emb = model.model.rotary_emb
        manifest["cases"][case] = {
            "arch": arch,
            "base": arch,
            "config": f"cases/{case}/config.json",
            "logits": {"file": f"cases/{case}/logits.npy", "dtype": "<f4", "shape": [len(ROWS), VOCAB]},
            "inv_freq": [float(x) for x in emb.inv_freq.tolist()],
            "attention_scaling": float(emb.attention_scaling),
        }
    real = {}
    for name, cfg in REAL.items():
        inv, scale = rotary(cfg["model_type"], cfg)
        real[name] = {"config": cfg, "inv_freq": inv, "attention_scaling": scale}
    write_json(OUT / "real_configs.json", real)
    write_json(OUT / "ref.json", manifest)
    print(json.dumps({k: v["attention_scaling"] for k, v in manifest["cases"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
