"""Switcher / verifier head fixtures on the tiny qwen2_tied_gqa model.

Contract:
- `heads/<kind>/head.safetensors`: `weight` [C, hidden] f32, `bias` [C] f32 (seeded, N(0, 0.5²));
  `heads/<kind>/head.json`: {"kind", "pooling", "labels"}.
  switcher: pooling "mean" over all T positions, labels ["chat", "reasoning"] (C = 2).
  verifier: pooling "last" (position T-1), labels ["score"] (C = 1).
- Pooling acts on the final hidden states AFTER the model's final RMSNorm (`model.norm` output,
  equal to transformers' `output_hidden_states[-1]`), computed in float32.
- Expected output per case: `logits` = weight · pooled + bias ([C] floats, in the manifest), plus
  `softmax` (switcher) / `sigmoid` (verifier) and the argmax label; `pooled` [hidden] as `.npy`.
- Cases: the model's reference `input_ids` and the adapter sequence's 8-token prompt. The
  switcher's random rows and bias are adjusted (`split_switcher`) so that `input_ids` is "chat"
  and `adapter_prompt` is "reasoning", with the boundary midway between them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import PreTrainedModel

from fixtures_common import npy_entry
from fixtures_tiny import final_hidden

HEADS = {
    "switcher": {"kind": "switcher", "pooling": "mean", "labels": ["chat", "reasoning"]},
    "verifier": {"kind": "verifier", "pooling": "last", "labels": ["score"]},
}
HEAD_SEED = 4242


def split_switcher(
    weight: torch.Tensor, bias: torch.Tensor, hiddens: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Make the random switcher route `input_ids` to chat and `adapter_prompt` to reasoning (the
    tests need one prompt per mode): swap the rows if the pooled features order the cases the
    other way, then put the decision boundary midway between them."""
    d = {k: float((weight[1] - weight[0]).double() @ h.mean(dim=0).double()) for k, h in hiddens.items()}
    if d["adapter_prompt"] < d["input_ids"]:
        weight = weight.flip(0).contiguous()
        d = {k: -v for k, v in d.items()}
    gap = -(d["input_ids"] + d["adapter_prompt"]) / 2 - float(bias[1] - bias[0])
    bias = bias + torch.tensor([-gap / 2, gap / 2], dtype=bias.dtype)
    return weight, bias


def gen_heads(model: PreTrainedModel, model_dir: Path, cases: dict[str, list[int]]) -> dict[str, Any]:
    hidden_size = model.config.hidden_size
    gen = torch.Generator().manual_seed(HEAD_SEED)
    section: dict[str, Any] = {}
    hiddens = {}
    for case, ids in cases.items():
        _, h, is_last = final_hidden(model, torch.tensor(ids, dtype=torch.long))
        if not is_last:
            raise RuntimeError("output_hidden_states[-1] is not the normed hidden state")
        hiddens[case] = h
    for name, meta in HEADS.items():
        d = model_dir / "heads" / name
        d.mkdir(parents=True, exist_ok=True)
        c = len(meta["labels"])
        weight = torch.randn(c, hidden_size, generator=gen) * 0.5
        bias = torch.randn(c, generator=gen) * 0.5
        if name == "switcher":
            weight, bias = split_switcher(weight, bias, hiddens)
        save_file({"weight": weight.contiguous(), "bias": bias.contiguous()}, str(d / "head.safetensors"))
        (d / "head.json").write_text(json.dumps(meta, indent=2) + "\n")
        out_cases = {}
        for case, ids in cases.items():
            h = hiddens[case]
            pooled = h.mean(dim=0) if meta["pooling"] == "mean" else h[-1]
            logits = weight.double() @ pooled.double() + bias.double()
            entry: dict[str, Any] = {
                "ids": ids,
                "pooled": npy_entry(d / f"{case}_pooled.npy", model_dir, pooled, "<f4"),
                "logits": [float(x) for x in logits],
                "label": meta["labels"][int(torch.argmax(logits))],
            }
            if name == "switcher":
                entry["softmax"] = [float(x) for x in torch.softmax(logits, dim=0)]
            else:
                entry["sigmoid"] = [float(x) for x in torch.sigmoid(logits)]
            out_cases[case] = entry
        section[name] = {"dir": f"heads/{name}", **meta, "cases": out_cases}
    return section
