#!/usr/bin/env python3
"""Write an HF checkpoint directory shaped like a real model, with random bf16 weights.

For converter benchmarks (`kestrel convert`): no torch, only numpy. The safetensors files are
written by hand (the format is an 8-byte LE header length, a JSON header, raw data), one tensor
at a time, so memory stays at one tensor.

    python tests/scripts/make_hf_like.py --like qwen2.5-0.5b -o /tmp/qwen05-hf [--shards 2] [--seed 0]

Weights ~ N(0, 0.02²) (norms 1, biases N(0, 0.1²)), bf16 by truncating f32. Writes config.json,
model.safetensors or model-0000k-of-0000n.safetensors + model.safetensors.index.json, and a tiny
tokenizer_config.json with a ChatML chat_template (no tokenizer.json).
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import numpy as np

PRESETS = {
    "qwen2.5-0.5b": dict(arch="qwen2", vocab=151936, hidden=896, inter=4864, layers=24, heads=14, kv=2, head_dim=64, tied=True, theta=1e6),
    "qwen2.5-1.5b": dict(arch="qwen2", vocab=151936, hidden=1536, inter=8960, layers=28, heads=12, kv=2, head_dim=128, tied=True, theta=1e6),
    "qwen2.5-7b": dict(arch="qwen2", vocab=152064, hidden=3584, inter=18944, layers=28, heads=28, kv=4, head_dim=128, tied=False, theta=1e6),
    "smollm2-135m": dict(arch="llama", vocab=49152, hidden=576, inter=1536, layers=30, heads=9, kv=3, head_dim=64, tied=True, theta=1e5),
}


def tensor_specs(p: dict) -> list[tuple[str, tuple[int, ...], str]]:
    h, q, kv, i = p["hidden"], p["heads"] * p["head_dim"], p["kv"] * p["head_dim"], p["inter"]
    bias = p["arch"] == "qwen2"
    out = [("model.embed_tokens.weight", (p["vocab"], h), "w")]
    for l in range(p["layers"]):
        pre = f"model.layers.{l}"
        out.append((f"{pre}.input_layernorm.weight", (h,), "norm"))
        for name, shape in [("q_proj", (q, h)), ("k_proj", (kv, h)), ("v_proj", (kv, h))]:
            out.append((f"{pre}.self_attn.{name}.weight", shape, "w"))
            if bias:
                out.append((f"{pre}.self_attn.{name}.bias", (shape[0],), "bias"))
        out.append((f"{pre}.self_attn.o_proj.weight", (h, q), "w"))
        out.append((f"{pre}.post_attention_layernorm.weight", (h,), "norm"))
        out += [(f"{pre}.mlp.gate_proj.weight", (i, h), "w"), (f"{pre}.mlp.up_proj.weight", (i, h), "w"), (f"{pre}.mlp.down_proj.weight", (h, i), "w")]
    out.append(("model.norm.weight", (h,), "norm"))
    if not p["tied"]:
        out.append(("lm_head.weight", (p["vocab"], h), "w"))
    return out


def bf16_bytes(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> bytes:
    n = int(np.prod(shape))
    if kind == "norm":
        x = np.ones(n, dtype=np.float32)
    else:
        x = rng.standard_normal(n, dtype=np.float32) * (0.1 if kind == "bias" else 0.02)
    return (x.view(np.uint32) >> 16).astype("<u2").tobytes()


def write_safetensors(path: Path, specs: list, rng: np.random.Generator) -> None:
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in specs:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for name, shape, kind in specs:
            f.write(bf16_bytes(rng, shape, kind))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--like", choices=sorted(PRESETS), required=True)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    p = PRESETS[a.like]
    a.output.mkdir(parents=True, exist_ok=True)
    archs = {"qwen2": ("Qwen2ForCausalLM", "qwen2"), "llama": ("LlamaForCausalLM", "llama")}[p["arch"]]
    cfg = {
        "architectures": [archs[0]], "model_type": archs[1], "vocab_size": p["vocab"], "hidden_size": p["hidden"],
        "intermediate_size": p["inter"], "num_hidden_layers": p["layers"], "num_attention_heads": p["heads"],
        "num_key_value_heads": p["kv"], "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
        "rope_theta": p["theta"], "tie_word_embeddings": p["tied"], "hidden_act": "silu", "torch_dtype": "bfloat16",
        "eos_token_id": 0,
    }
    (a.output / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    chatml = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    (a.output / "tokenizer_config.json").write_text(json.dumps({"chat_template": chatml}) + "\n")
    rng = np.random.default_rng(a.seed)
    specs = tensor_specs(p)
    if a.shards <= 1:
        write_safetensors(a.output / "model.safetensors", specs, rng)
        return
    weight_map = {}
    for k in range(a.shards):
        name = f"model-{k + 1:05d}-of-{a.shards:05d}.safetensors"
        part = specs[k * len(specs) // a.shards:(k + 1) * len(specs) // a.shards]
        write_safetensors(a.output / name, part, rng)
        weight_map.update({t[0]: name for t in part})
    index = {"metadata": {"total_size": sum(int(np.prod(s)) * 2 for _, s, _ in specs)}, "weight_map": weight_map}
    (a.output / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
