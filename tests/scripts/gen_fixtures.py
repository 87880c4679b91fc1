#!/usr/bin/env python3
"""Kestrel reference-fixture generator: HF transformers (+ peft) is the ground truth.

Run (CPU only, a few minutes):
    python3 -m venv /work/.venv-fixtures
    /work/.venv-fixtures/bin/pip install -r tests/scripts/requirements-fixtures.txt
    /work/.venv-fixtures/bin/python tests/scripts/gen_fixtures.py [--only tiny,smollm2,qwen_tokenizer]

Writes `tests/fixtures/{tiny,smollm2,qwen_tokenizer}/` (documented in `tests/fixtures/README.md`).
Real assets come from `scripts/fetch-assets.sh` (`$KESTREL_ASSETS`, default ~/.cache/kestrel/assets).
Every step is seeded and deterministic; rerunning rewrites identical fixtures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures_common import deterministic, npy_entry, step_margins, summarize, write_json  # noqa: E402
from fixtures_gguf import QTYPES, check_loaded_matches, load_gguf, write_gguf  # noqa: E402
from fixtures_heads import gen_heads  # noqa: E402
from fixtures_peft import PROMPT_LEN, gen_adapters  # noqa: E402
from fixtures_realmodels import gen_qwen_tokenizer, gen_smollm2  # noqa: E402
from fixtures_seed import pick_seed  # noqa: E402
from fixtures_tiny import (  # noqa: E402
    GREEDY_NEW_TOKENS,
    TINY_SPECS,
    TinySpec,
    build_model,
    input_ids,
    reference,
    special_ids,
    write_hf_dir,
)
from fixtures_tokenizer import TOKENIZER_STRINGS, train_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def nmse(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((got - ref) ** 2).sum() / (ref**2).sum())


def ref_entries(d: Path, base: Path, prefix: str, ref: dict[str, Any]) -> dict[str, Any]:
    g = ref["greedy"]
    return {
        "logits": npy_entry(d / f"{prefix}logits.npy", base, ref["logits"], "<f4"),
        "logits_min_top2_margin": ref["logits_margin"],
        "greedy": {
            "max_new_tokens": GREEDY_NEW_TOKENS,
            "ids": g["ids"],
            "step_logits": npy_entry(d / f"{prefix}greedy_step_logits.npy", base, g["step_logits"], "<f4"),
            "min_top2_margin": g["margin"],
            "step_top2_margins": step_margins(g["step_logits"]),
        },
    }


def gen_tiny_model(spec: TinySpec, root: Path) -> dict[str, Any]:
    deterministic(spec.seed)
    d = root / spec.name
    if d.exists():
        shutil.rmtree(d)
    tok = train_tokenizer(spec.tokenizer_style)
    seed, seed_margin = pick_seed(spec, tok)
    model = build_model(spec, tok, seed)
    write_hf_dir(spec, model, tok, d / "hf")
    sp = special_ids(tok)
    ids = input_ids(tok)
    ref = reference(model, ids, sp["eos"], sp["pad"])
    manifest: dict[str, Any] = {
        "model": spec.name,
        "arch": spec.arch,
        "hf_dir": "hf",
        "spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__},
        "seed": seed,
        "seed_search_min_margin": seed_margin,
        "vocab_size": model.config.vocab_size,
        "special_ids": sp,
        "input_ids": ids,
        "hidden": npy_entry(d / "hidden.npy", d, ref["hidden"], "<f4"),
        "hidden_states_last_is_normed": ref["hidden_states_last_is_normed"],
        "tokenizer": {"strings": TOKENIZER_STRINGS, "ids": [tok.encode(s).ids for s in TOKENIZER_STRINGS]},
        **ref_entries(d, d, "", ref),
        "gguf": {},
    }
    gguf_models = {}
    for quant in QTYPES:
        path = d / "gguf" / f"{spec.name}.{quant}.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_gguf(spec, model, tok, path, quant)
        gmodel, gtok = load_gguf(path)
        gguf_models[quant] = gmodel
        worst = check_loaded_matches(gmodel, path, spec)
        if worst > 1e-6:
            raise RuntimeError(f"{path.name}: transformers dequantization differs by {worst}")
        gtok_ids = [gtok(s, add_special_tokens=False)["input_ids"] for s in TOKENIZER_STRINGS]
        if gtok_ids != manifest["tokenizer"]["ids"]:
            raise RuntimeError(f"{path.name}: tokenizer rebuilt from GGUF tokenizes differently")
        gref = reference(gmodel, ids, sp["eos"], sp["pad"])
        prefix = f"gguf/{quant.lower()}_"
        manifest["gguf"][quant] = {
            "file": str(path.relative_to(d)),
            "embed_qtype": "Q8_0",
            "tied": gmodel.config.tie_word_embeddings,
            "nmse_logits_vs_f32": nmse(gref["logits"], ref["logits"]),
            "transformers_vs_gguf_py_max_weight_diff": worst,
            "tokenizer_matches_hf_dir": True,
            **ref_entries(d, d, prefix, gref),
        }
    manifest["adapters"] = gen_adapters(spec, model, tok, d, gguf_models["Q4_1"])
    if spec.name == "qwen2_tied_gqa":
        manifest["heads"] = gen_heads(
            model, d, {"input_ids": ids, "adapter_prompt": manifest["adapters"]["seq_ids"][:PROMPT_LEN]}
        )
    write_json(d / "ref.json", manifest)
    print(f"[tiny] {spec.name}: greedy {ref['greedy']['ids']} margin {ref['greedy']['margin']:.3f}")
    return manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="tiny,smollm2,qwen_tokenizer", help="comma-separated fixture sets")
    ap.add_argument("--out", type=Path, default=FIXTURES)
    default_assets = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kestrel" / "assets"
    ap.add_argument("--assets", type=Path, default=Path(os.environ.get("KESTREL_ASSETS", default_assets)))
    args = ap.parse_args()
    only = set(args.only.split(","))
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if "tiny" in only:
        for spec in TINY_SPECS:
            gen_tiny_model(spec, args.out / "tiny")
    if "smollm2" in only:
        gen_smollm2(args.assets / "SmolLM2-135M-Instruct.Q4_1.gguf", args.out / "smollm2")
    if "qwen_tokenizer" in only:
        gen_qwen_tokenizer(args.assets / "qwen-tokenizer", args.out / "qwen_tokenizer")
    summarize(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
