"""Write the tiny checkpoints as GGUF (llama.cpp conventions) and load them back with transformers.

Contract (what the Rust GGUF importer must accept):
- `general.architecture` = "qwen2" | "llama"; hyper-parameters under `<arch>.*` as
  convert_hf_to_gguf.py writes them (context_length, embedding_length, block_count,
  feed_forward_length, attention.head_count[_kv], rope.freq_base, attention.layer_norm_rms_epsilon,
  rope.dimension_count, vocab_size); `general.file_type` 2 (MOSTLY_Q4_0) or 3 (MOSTLY_Q4_1).
- Tensors: `token_embd.weight` Q8_0; `output.weight` Q8_0 only when untied (absent = tied);
  `output_norm.weight`, `blk.N.attn_norm.weight`, `blk.N.ffn_norm.weight` F32;
  `blk.N.attn_{q,k,v,output}.weight`, `blk.N.ffn_{gate,up,down}.weight` Q4_0 or Q4_1 (gguf-py's
  reference quantizer); qwen2's `blk.N.attn_{q,k,v}.bias` F32.
- llama: attn_q / attn_k rows are permuted for GGML's interleaved RoPE exactly like
  convert_hf_to_gguf.py `LlamaModel.permute` (k with n_head_kv); qwen2 is not permuted.
- Tokenizer: `tokenizer.ggml.model`="gpt2", `.pre`="qwen2" | "smollm", `.tokens`, `.token_type`
  (1 normal, 3 control for the three specials), `.merges` ("a b"), bos/eos/padding ids,
  `add_bos_token` false, `tokenizer.chat_template` = the ChatML template.
- `load_gguf(path)` returns transformers' model (dequantized to float32, eager attention) and
  tokenizer rebuilt from the file.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from fixtures_tiny import MAX_POSITIONS, TinySpec, special_ids
from fixtures_tokenizer import CHATML_TEMPLATE, SPECIALS, vocab_and_merges

QTYPES = {"Q4_0": (gguf.GGMLQuantizationType.Q4_0, 2), "Q4_1": (gguf.GGMLQuantizationType.Q4_1, 3)}
EMBED_QTYPE = gguf.GGMLQuantizationType.Q8_0

_LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute: rotate-half rows -> interleaved-pair rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    parts = hf.split(".")
    if parts[:2] != ["model", "layers"]:
        raise KeyError(hf)
    return f"blk.{parts[2]}.{_LAYER_MAP['.'.join(parts[3:])]}"


def write_gguf(spec: TinySpec, model: PreTrainedModel, tok: Tokenizer, path: Path, quant: str) -> None:
    qtype, file_type = QTYPES[quant]
    arch = spec.arch
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(spec.name)
    w.add_file_type(file_type)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(MAX_POSITIONS)
    w.add_embedding_length(spec.hidden)
    w.add_block_count(spec.layers)
    w.add_feed_forward_length(spec.intermediate)
    w.add_head_count(spec.heads)
    w.add_head_count_kv(spec.kv_heads)
    w.add_rope_freq_base(spec.rope_theta)
    w.add_layer_norm_rms_eps(spec.rms_eps)
    w.add_rope_dimension_count(spec.head_dim)
    w.add_vocab_size(model.config.vocab_size)

    tokens, merges = vocab_and_merges(tok)
    ids = special_ids(tok)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2" if arch == "qwen2" else "smollm")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(model.config.bos_token_id)
    w.add_eos_token_id(ids["eos"])
    w.add_pad_token_id(ids["pad"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML_TEMPLATE)

    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    if spec.tied:
        state.pop("lm_head.weight", None)
    for hf, arr in state.items():
        name = gguf_name(hf)
        if arch == "llama" and name.endswith("attn_q.weight"):
            arr = permute(arr, spec.heads, spec.heads)
        elif arch == "llama" and name.endswith("attn_k.weight"):
            arr = permute(arr, spec.heads, spec.kv_heads)
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if arr.ndim == 1:
            w.add_tensor(name, arr)
        else:
            t = EMBED_QTYPE if name in ("token_embd.weight", "output.weight") else qtype
            w.add_tensor(name, gguf.quants.quantize(arr, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def dequantized_hf_state(path: Path, spec: TinySpec) -> dict[str, np.ndarray]:
    """Independent dequantization with gguf-py (permutation undone), keyed by GGUF name."""
    out = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type)
        arr = arr.reshape([int(d) for d in reversed(t.shape)]) if arr.ndim != 1 else arr
        if spec.arch == "llama" and t.name.endswith("attn_q.weight"):
            arr = _unpermute(arr, spec.heads, spec.heads)
        elif spec.arch == "llama" and t.name.endswith("attn_k.weight"):
            arr = _unpermute(arr, spec.heads, spec.kv_heads)
        out[t.name] = arr
    return out


def _unpermute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    n = n_head_kv if n_head != n_head_kv else n_head
    return w.reshape(n, w.shape[0] // n // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_gguf(path: Path):
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tok


def check_loaded_matches(model: PreTrainedModel, path: Path, spec: TinySpec) -> float:
    """Max |transformers' dequantized weight - gguf-py dequantized weight|; must be ~0."""
    deq = dequantized_hf_state(path, spec)
    worst = 0.0
    for hf, p in model.state_dict().items():
        if spec.tied and hf == "lm_head.weight":
            continue
        ref = deq[gguf_name(hf)]
        got = p.detach().float().numpy()
        if got.shape != ref.shape:
            raise RuntimeError(f"{path.name}: {hf} shape {got.shape} != {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst
