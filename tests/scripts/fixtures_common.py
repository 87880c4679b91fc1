"""Shared helpers for the Kestrel reference-fixture generator.

Contract:
- Every array fixture is written with `save_npy` as a NumPy `.npy` v1.0 file, C order, little-endian,
  dtype one of `<f4`, `<f2`, `<i4` (the Rust side has a tiny reader that accepts exactly these).
- Every manifest is JSON written with `write_json` (sorted keys, 2-space indent, trailing newline) so
  regenerating produces byte-identical files when the inputs are unchanged.
- Paths stored in manifests are relative to the manifest's own directory.
- `deterministic(seed)` seeds torch and numpy, makes float32 the default dtype and turns on torch's
  deterministic algorithms, so reruns on CPU reproduce the same numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

ALLOWED_NPY = {"<f4": np.float32, "<f2": np.float16, "<i4": np.int32}


def deterministic(seed: int) -> None:
    """Seed every RNG we use and force deterministic CPU kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)


def save_npy(path: Path, array: Any, dtype: str) -> str:
    """Write `array` as `.npy` v1.0 with the given little-endian dtype; returns the file name."""
    if dtype not in ALLOWED_NPY:
        raise ValueError(f"unsupported npy dtype {dtype}")
    if isinstance(array, torch.Tensor):
        array = array.detach().to(torch.float64 if dtype != "<i4" else torch.int64).cpu().numpy()
    arr = np.ascontiguousarray(np.asarray(array).astype(np.dtype(dtype)))
    if dtype != "<i4" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{path}: non-finite values")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)
    return path.name


def npy_entry(path: Path, base: Path, array: Any, dtype: str) -> dict[str, Any]:
    """Save an array and return its manifest entry {file, dtype, shape} relative to `base`."""
    save_npy(path, array, dtype)
    arr = np.load(path)
    return {"file": str(path.relative_to(base)), "dtype": dtype, "shape": list(arr.shape)}


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def top2_margin(logits: torch.Tensor) -> float:
    """Smallest gap between the best and second-best logit over rows (greedy tie risk)."""
    top = torch.topk(logits.float(), 2, dim=-1).values
    return float((top[..., 0] - top[..., 1]).min())


def step_margins(logits: torch.Tensor) -> list[float]:
    """Per-row gap between the best and second-best logit (rounded to 1e-6)."""
    top = torch.topk(logits.float(), 2, dim=-1).values
    return [round(float(x), 6) for x in (top[..., 0] - top[..., 1])]


def summarize(root: Path) -> int:
    """Print every file under `root` with its size; returns the total in bytes."""
    total = 0
    for p in sorted(root.rglob("*")):
        if p.is_file():
            size = p.stat().st_size
            total += size
            print(f"{size:>10}  {p.relative_to(root)}")
    print(f"{total:>10}  TOTAL ({total / 1e6:.2f} MB) under {root}")
    return total
