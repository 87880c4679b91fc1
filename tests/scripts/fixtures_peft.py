"""PEFT LoRA adapters on the tiny checkpoints, with standard and shared-KV reference logits.

Contract:
- `gen_adapters(spec, model, tok, model_dir)` writes `adapters/<name>/` (a plain PEFT dir:
  `adapter_config.json` + `adapter_model.safetensors`, keys
  `base_model.model.model.layers.{i}.{self_attn|mlp}.<proj>.lora_{A|B}.weight`, A [R, K], B [M, R],
  f32) and `adapter_refs/<name>/*.npy`, and returns the manifest section.
- Good adapters (`ADAPTERS`): random A ~ N(0, 0.07²), B ~ N(0, 0.07²) (B ≠ 0), lora_alpha ≠ r;
  scale = alpha / r, or alpha / sqrt(r) with rslora.
- Token sequence: `SEQ_LEN` = 16 fixed ids, the first `PROMPT_LEN` = 8 are the prompt.
  References, all float32 eager attention, reloaded from the saved dir with `PeftModel.from_pretrained`:
  `standard` [16, V]: adapter on for every token.
  `shared_kv` [8, V]: the 8 prompt tokens run with `disable_adapter()` (use_cache=True), then the 8
      continuation tokens run with the adapter on over that past_key_values — logits of those 8.
  `base` [16, V]: adapter off.
  `r8_all` additionally on the Q4_1 GGUF-dequantized base (the W4 case), same three references.
- Bad adapters (qwen2_tied_gqa only), each must be refused by the importer/engine:
  `bad_dora` (use_dora true), `bad_rank` (config r=8, tensors rank 4), `bad_target` (lm_head is a
  target), `bad_base` (a valid r8_all made for qwen2_untied_1kv: 1 kv head, intermediate 96).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from fixtures_common import npy_entry
from fixtures_tiny import SPEC_BY_NAME, TinySpec, build_model

ALL_PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTERS: dict[str, dict[str, Any]] = {
    "r8_all": dict(r=8, lora_alpha=16, target_modules=ALL_PROJ),
    "r64_all": dict(r=64, lora_alpha=32, target_modules=ALL_PROJ),
    "r8_rslora": dict(r=8, lora_alpha=6, target_modules=ALL_PROJ, use_rslora=True),
    "r8_qv": dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
}
LORA_STD = 0.07
SEQ_TEXT = "Adapters switch on when a prompt needs reasoning; the base model chats along."
SEQ_LEN = 16
PROMPT_LEN = 8


def seq_ids(tok: Tokenizer) -> list[int]:
    ids = tok.encode(SEQ_TEXT).ids[:SEQ_LEN]
    if len(ids) != SEQ_LEN:
        raise RuntimeError(f"adapter sequence has {len(ids)} < {SEQ_LEN} tokens")
    return ids


@torch.no_grad()
def make_adapter(base: PreTrainedModel, name: str, cfg: dict[str, Any], seed: int, out: Path) -> None:
    """Wrap a copy of `base` with a random LoRA and save it as a PEFT dir at `out`."""
    config = LoraConfig(lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", **cfg)
    peft_model = get_peft_model(copy.deepcopy(base), config)
    gen = torch.Generator().manual_seed(seed)
    for pname, p in peft_model.named_parameters():
        if "lora_A" in pname or "lora_B" in pname:
            p.copy_(torch.randn(p.shape, generator=gen) * LORA_STD)
    if out.exists():
        shutil.rmtree(out)
    peft_model.save_pretrained(out)
    (out / "README.md").unlink(missing_ok=True)
    cfg_path = out / "adapter_config.json"
    conf = json.loads(cfg_path.read_text())
    conf["base_model_name_or_path"] = f"kestrel-tiny/{name}"
    if isinstance(conf.get("target_modules"), list):  # peft stores a set: make the file reproducible
        conf["target_modules"] = sorted(conf["target_modules"])
    cfg_path.write_text(json.dumps(conf, indent=2, sort_keys=True) + "\n")


@torch.no_grad()
def adapter_refs(base: PreTrainedModel, adapter_dir: Path, ids: list[int]) -> dict[str, torch.Tensor]:
    model = PeftModel.from_pretrained(copy.deepcopy(base), str(adapter_dir)).eval()
    full = torch.tensor([ids], dtype=torch.long)
    standard = model(full, use_cache=False).logits[0]
    with model.disable_adapter():
        base_logits = model(full, use_cache=False).logits[0]
        prompt = model(full[:, :PROMPT_LEN], use_cache=True)
    shared = model(full[:, PROMPT_LEN:], past_key_values=prompt.past_key_values, use_cache=True).logits[0]
    with model.disable_adapter():  # the cache path itself must reproduce the uncached base logits
        again = model(full[:, :PROMPT_LEN], use_cache=True)
        tail = model(full[:, PROMPT_LEN:], past_key_values=again.past_key_values, use_cache=True).logits[0]
    if not torch.allclose(tail, base_logits[PROMPT_LEN:], atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"{adapter_dir}: cached base continuation differs from the uncached base")
    return {"standard": standard.float(), "shared_kv": shared.float(), "base": base_logits.float()}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).sum() / (b**2).sum())


def _ref_section(refs: dict[str, torch.Tensor], d: Path, model_dir: Path, prefix: str) -> dict[str, Any]:
    sec: dict[str, Any] = {k: npy_entry(d / f"{prefix}{k}.npy", model_dir, v, "<f4") for k, v in refs.items()}
    sec["nmse_standard_vs_base"] = _rel(refs["standard"], refs["base"])
    sec["nmse_shared_vs_standard_tail"] = _rel(refs["shared_kv"], refs["standard"][PROMPT_LEN:])
    if sec["nmse_standard_vs_base"] < 1e-3:
        raise RuntimeError(f"{d}: adapter barely changes the logits")
    return sec


def _bad_adapters(spec: TinySpec, model: PreTrainedModel, tok: Tokenizer, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    make_adapter(model, spec.name, dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_dora=True),
                 spec.seed + 500, root / "bad_dora")
    out["bad_dora"] = {"dir": "adapters/bad_dora", "why": "use_dora is true (DoRA unsupported)"}

    src = root / "r8_all"
    dst = root / "bad_rank"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    shutil.copy(src / "adapter_config.json", dst / "adapter_config.json")
    tensors = load_file(str(src / "adapter_model.safetensors"))
    cut = {k: (v[:4].contiguous() if "lora_A" in k else v[:, :4].contiguous()) for k, v in tensors.items()}
    save_file(cut, str(dst / "adapter_model.safetensors"), metadata={"format": "pt"})
    out["bad_rank"] = {"dir": "adapters/bad_rank", "why": "adapter_config r=8 but tensors have rank 4"}

    make_adapter(model, spec.name, dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "lm_head"]),
                 spec.seed + 501, root / "bad_target")
    out["bad_target"] = {"dir": "adapters/bad_target", "why": "targets lm_head (only the 7 projections allowed)"}

    other = SPEC_BY_NAME["qwen2_untied_1kv"]
    other_model = build_model(other, tok)
    make_adapter(other_model, other.name, ADAPTERS["r8_all"], spec.seed + 502, root / "bad_base")
    out["bad_base"] = {"dir": "adapters/bad_base", "why": "r8_all made for qwen2_untied_1kv (k/v M=16, I=96)"}
    return out


def gen_adapters(spec: TinySpec, model: PreTrainedModel, tok: Tokenizer, model_dir: Path,
                 gguf_base: PreTrainedModel | None = None) -> dict[str, Any]:
    root = model_dir / "adapters"
    ids = seq_ids(tok)
    section: dict[str, Any] = {"seq_ids": ids, "prompt_len": PROMPT_LEN, "adapters": {}}
    for i, (name, cfg) in enumerate(ADAPTERS.items()):
        adir = root / name
        make_adapter(model, spec.name, cfg, spec.seed + 100 + i, adir)
        refs = adapter_refs(model, adir, ids)
        entry = {
            "dir": f"adapters/{name}",
            "r": cfg["r"],
            "lora_alpha": cfg["lora_alpha"],
            "use_rslora": cfg.get("use_rslora", False),
            "target_modules": cfg["target_modules"],
            "scale": cfg["lora_alpha"] / (cfg["r"] ** 0.5 if cfg.get("use_rslora") else cfg["r"]),
            "refs": _ref_section(refs, model_dir / "adapter_refs" / name, model_dir, ""),
        }
        if name == "r8_all" and gguf_base is not None:
            grefs = adapter_refs(gguf_base, adir, ids)
            entry["refs_on_gguf_q4_1"] = _ref_section(grefs, model_dir / "adapter_refs" / name, model_dir, "q4_1_")
        section["adapters"][name] = entry
    if spec.name == "qwen2_tied_gqa":
        section["bad"] = _bad_adapters(spec, model, tok, root)
    return section
