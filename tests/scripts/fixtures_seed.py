"""Deterministic seed choice for the tiny random checkpoints.

Contract: `pick_seed(spec, tok)` tries seeds `spec.seed .. spec.seed + SEED_TRIES - 1` in order and
returns (seed, min_margin) for the seed that maximises the smallest top-1/top-2 logit gap over the
16-step greedy continuation of the float32 model AND of the same model with its linears round-tripped
through GGUF Q4_0 and Q4_1 (embeddings through Q8_0), among seeds whose float32 greedy output has at
least `MIN_DISTINCT` distinct tokens and never emits eos. This keeps every committed greedy reference
far from an argmax tie, so a GPU engine that matches the math to ~1e-4 reproduces the same tokens,
and keeps the continuation varied enough to exercise positions and the KV cache.
"""

from __future__ import annotations

import copy

import gguf
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from fixtures_tiny import GREEDY_NEW_TOKENS, TinySpec, build_model, greedy, input_ids, special_ids

SEED_TRIES = 32
MIN_DISTINCT = 8
_Q = gguf.GGMLQuantizationType


@torch.no_grad()
def quant_roundtrip(model: PreTrainedModel, qtype: _Q) -> PreTrainedModel:
    """A copy whose 2-D weights are replaced by dequantize(quantize(w)) (embeddings via Q8_0)."""
    m = copy.deepcopy(model)
    for name, p in m.named_parameters():
        if p.ndim == 2:
            t = _Q.Q8_0 if ("embed_tokens" in name or name == "lm_head.weight") else qtype
            deq = gguf.quants.dequantize(gguf.quants.quantize(p.detach().numpy(), t), t)
            p.copy_(torch.from_numpy(deq))
    return m


def pick_seed(spec: TinySpec, tok: Tokenizer) -> tuple[int, float]:
    sp = special_ids(tok)
    ids = input_ids(tok)
    best: tuple[float, int] | None = None
    for seed in range(spec.seed, spec.seed + SEED_TRIES):
        model = build_model(spec, tok, seed)
        g = greedy(model, ids, sp["eos"], sp["pad"], GREEDY_NEW_TOKENS)
        if len(g["ids"]) != GREEDY_NEW_TOKENS or sp["eos"] in g["ids"] or len(set(g["ids"])) < MIN_DISTINCT:
            continue
        margin = g["margin"]
        for qtype in (_Q.Q4_0, _Q.Q4_1):
            q = greedy(quant_roundtrip(model, qtype), ids, sp["eos"], sp["pad"], GREEDY_NEW_TOKENS)
            if len(q["ids"]) != GREEDY_NEW_TOKENS:
                margin = -1.0
            margin = min(margin, q["margin"])
        if best is None or margin > best[0]:
            best = (margin, seed)
    if best is None:
        raise RuntimeError(f"{spec.name}: no seed in {SEED_TRIES} tries gives a varied greedy continuation")
    return best[1], best[0]
