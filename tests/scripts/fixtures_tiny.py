"""Tiny random Qwen2 / Llama checkpoints (HF dirs) and their float32 transformers references.

Contract:
- `TINY_SPECS` names the three checkpoints; `build_model(spec)` makes the seeded random model, and
  `write_hf_dir(spec, model, tok, dir)` writes `config.json`, `model.safetensors` (f32, no
  `lm_head.weight` when tied), `tokenizer.json`, `tokenizer_config.json` (ChatML `chat_template`,
  eos `<|im_end|>`, pad `<|endoftext|>`), `generation_config.json`.
- Weights: embeddings / untied lm_head ~ N(0, 1), every linear weight ~ N(0, 0.2²), biases
  ~ N(0, 0.1²), RMSNorm weights ~ U(0.6, 1.4): logits spread over several units, greedy decoding
  does not collapse onto one repeated token, and a missing norm, bias or transposition shows up.
  `spec.seed` is the base seed; the seed actually used is chosen by `fixtures_seed.pick_seed`.
- `config.json` is the transformers-5 form (`rope_parameters`), except for the models in
  `LEGACY_CONFIG`, rewritten into the pre-4.56 form (`to_legacy_config`).
- `reference(model, ids, eos, pad)` runs transformers float32 eager attention and returns
  logits [T, V], the final normed hidden states [T, hidden] (captured at `model.norm`'s output,
  checked equal to `output_hidden_states[-1]`), a 16-token greedy continuation (stops early only if
  eos is produced) with its per-step logits, and the smallest top-1/top-2 logit gap of both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from fixtures_common import top2_margin
from fixtures_tokenizer import CHATML_TEMPLATE, TINY_VOCAB

GREEDY_NEW_TOKENS = 16
INPUT_TEXT = "The quick brown fox jumps over 12 lazy dogs, and then it rests."
INPUT_LEN = 12


@dataclass(frozen=True)
class TinySpec:
    name: str
    arch: str  # "qwen2" | "llama"
    seed: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    tied: bool
    rope_theta: float
    rms_eps: float

    @property
    def tokenizer_style(self) -> str:
        return "qwen2" if self.arch == "qwen2" else "smollm"

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


TINY_SPECS = [
    TinySpec("qwen2_tied_gqa", "qwen2", 1001, 64, 2, 4, 2, 128, True, 1000000.0, 1e-6),
    TinySpec("qwen2_untied_1kv", "qwen2", 1002, 64, 2, 4, 1, 96, False, 10000.0, 1e-6),
    TinySpec("llama", "llama", 1003, 64, 2, 4, 2, 128, True, 100000.0, 1e-5),
]
SPEC_BY_NAME = {s.name: s for s in TINY_SPECS}
# Written in the legacy config form (top-level rope_theta), so the suite reads both forms.
LEGACY_CONFIG = {"qwen2_untied_1kv"}
MAX_POSITIONS = 256
EMBED_STD = 1.0
LINEAR_STD = 0.2
BIAS_STD = 0.1


def special_ids(tok: Tokenizer) -> dict[str, int]:
    return {
        "eos": tok.token_to_id("<|im_end|>"),
        "pad": tok.token_to_id("<|endoftext|>"),
        "bos": tok.token_to_id("<|im_start|>"),
    }


def make_config(spec: TinySpec, tok: Tokenizer) -> Qwen2Config | LlamaConfig:
    ids = special_ids(tok)
    common = dict(
        vocab_size=TINY_VOCAB,
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=MAX_POSITIONS,
        rope_theta=spec.rope_theta,
        rms_norm_eps=spec.rms_eps,
        tie_word_embeddings=spec.tied,
        hidden_act="silu",
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
        torch_dtype="float32",
    )
    if spec.arch == "qwen2":
        return Qwen2Config(bos_token_id=ids["pad"], use_sliding_window=False, **common)
    return LlamaConfig(
        bos_token_id=ids["bos"], head_dim=spec.head_dim, attention_bias=False, mlp_bias=False, **common
    )


@torch.no_grad()
def build_model(spec: TinySpec, tok: Tokenizer, seed: int | None = None) -> PreTrainedModel:
    torch.manual_seed(spec.seed if seed is None else seed)
    config = make_config(spec, tok)
    config._attn_implementation = "eager"
    cls = Qwen2ForCausalLM if spec.arch == "qwen2" else LlamaForCausalLM
    model = cls(config).to(torch.float32).eval()
    for name, p in model.named_parameters():
        if "norm" in name:
            p.uniform_(0.6, 1.4)
        elif "embed_tokens" in name or name == "lm_head.weight":
            p.normal_(0.0, EMBED_STD)
        elif name.endswith("bias"):
            p.normal_(0.0, BIAS_STD)
        else:
            p.normal_(0.0, LINEAR_STD)
    if spec.tied and model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError(f"{spec.name}: lm_head is not tied to embed_tokens")
    return model


def hf_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML_TEMPLATE,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )


def write_hf_dir(spec: TinySpec, model: PreTrainedModel, tok: Tokenizer, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    ids = special_ids(tok)
    GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
        do_sample=False,
    ).save_pretrained(out)
    hf_tokenizer(tok).save_pretrained(out)
    (out / "special_tokens_map.json").unlink(missing_ok=True)
    # transformers 4.57 moves the template to chat_template.jinja; keep it in tokenizer_config.json.
    (out / "chat_template.jinja").unlink(missing_ok=True)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = CHATML_TEMPLATE
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    if spec.name in LEGACY_CONFIG:
        to_legacy_config(out / "config.json")


def to_legacy_config(path: Path) -> None:
    """Rewrite a transformers-5 `config.json` into the form transformers < 4.56 wrote (and most
    hub checkpoints still have): top-level `rope_theta`, no `rope_parameters`, no `layer_types`.
    Only for default RoPE (what those versions saved for these models)."""
    cfg = json.loads(path.read_text())
    rope = cfg.pop("rope_parameters")
    if set(rope) != {"rope_theta", "rope_type"} or rope["rope_type"] != "default":
        raise RuntimeError(f"legacy form only for default RoPE, got {rope}")
    cfg["rope_theta"] = rope["rope_theta"]
    cfg["rope_scaling"] = None
    cfg.pop("layer_types", None)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def input_ids(tok: Tokenizer) -> list[int]:
    ids = tok.encode(INPUT_TEXT).ids[:INPUT_LEN]
    if len(ids) != INPUT_LEN:
        raise RuntimeError(f"input text encodes to {len(ids)} < {INPUT_LEN} tokens")
    return ids


@torch.no_grad()
def final_hidden(model: PreTrainedModel, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(logits [T, V], hidden after the final norm [T, hidden], whether hidden_states[-1] equals it)."""
    captured: list[torch.Tensor] = []
    hook = model.model.norm.register_forward_hook(lambda _m, _i, o: captured.append(o.detach().clone()))
    try:
        out = model(ids[None], output_hidden_states=True, use_cache=False)
    finally:
        hook.remove()
    normed = captured[-1][0]
    last = out.hidden_states[-1][0]
    return out.logits[0].float(), normed.float(), bool(torch.equal(normed, last))


@torch.no_grad()
def greedy(model: PreTrainedModel, ids: list[int], eos: int, pad: int, n: int) -> dict[str, Any]:
    inp = torch.tensor([ids], dtype=torch.long)
    out = model.generate(
        inp,
        attention_mask=torch.ones_like(inp),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=pad,
        output_logits=True,
        return_dict_in_generate=True,
    )
    new = out.sequences[0, len(ids) :].tolist()
    if eos in new:
        new = new[: new.index(eos) + 1]
    step_logits = torch.stack([s[0] for s in out.logits])[: len(new)].float()
    return {"ids": new, "step_logits": step_logits, "margin": top2_margin(step_logits)}


def reference(model: PreTrainedModel, ids: list[int], eos: int, pad: int) -> dict[str, Any]:
    logits, hidden, hs_last_is_normed = final_hidden(model, torch.tensor(ids, dtype=torch.long))
    g = greedy(model, ids, eos, pad, GREEDY_NEW_TOKENS)
    return {
        "logits": logits,
        "hidden": hidden,
        "hidden_states_last_is_normed": hs_last_is_normed,
        "logits_margin": top2_margin(logits),
        "greedy": g,
    }
