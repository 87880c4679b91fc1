#!/usr/bin/env python3
"""Write demo/RESULTS.md from the records of a demo run (standard library only).

    python3 demo/report.py RUN_DIR [--out demo/RESULTS.md] [--check]

RUN_DIR is what scripts/demo.sh fills: `kestrel eval --out` records (one JSON line per problem ×
configuration), `kestrel bench --json`, the train-head logs and meta.json (settings, stage times).
Every figure is computed from the records, so the table can be re-made without re-running anything.
--check validates the run's outputs (record schema and counts, heads present) and exits non-zero on
a problem; the CI run of `scripts/demo.sh --quick` uses it and asserts no accuracy figure.
"""
import argparse
import json
import math
import os
import statistics
import sys

RECORD_KEYS = {"id", "mode", "n_paths", "select", "think_budget", "expected", "kind", "routed", "paths",
               "selected_path", "selected_answer", "correct", "oracle", "prompt_tokens", "ttft_ms",
               "decode_ms", "wall_ms", "settings"}
PATH_KEYS = {"text", "tokens", "thinking_tokens", "answer_tokens", "finish", "thinking_forced", "score",
             "answer", "correct"}


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wilson(k, n, z=1.96):
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


class Rows:
    """The records of one eval run, filtered by configuration."""

    def __init__(self, records):
        self.records = records

    def of(self, mode=None, n=None, select=None, budget="any", kind=None):
        out = []
        for r in self.records:
            if mode is not None and r["mode"] != mode:
                continue
            if n is not None and r["n_paths"] != n:
                continue
            if select is not None and r["select"] != select:
                continue
            if budget != "any" and r["think_budget"] != budget:
                continue
            if kind is not None and r.get("kind") != kind:
                continue
            out.append(r)
        return out


def stats(recs):
    """Accuracy and cost figures of a set of records (one configuration)."""
    n = len(recs)
    k = sum(r["correct"] for r in recs)
    paths = [p for r in recs for p in r["paths"]]
    lo, hi = wilson(k, n)
    return {
        "n": n,
        "acc": k / n if n else float("nan"),
        "lo": lo,
        "hi": hi,
        "oracle": sum(r["oracle"] for r in recs) / n if n else float("nan"),
        "tokens": statistics.mean(p["tokens"] for p in paths) if paths else float("nan"),
        "thinking": statistics.mean(p["thinking_tokens"] for p in paths) if paths else float("nan"),
        "thinking_p50": statistics.median(p["thinking_tokens"] for p in paths) if paths else float("nan"),
        "answer": statistics.mean(p["answer_tokens"] for p in paths) if paths else float("nan"),
        "forced": sum(p["thinking_forced"] for p in paths) / len(paths) if paths else float("nan"),
        "tokens_sum": sum(p["tokens"] for p in paths),
        "wall_s": statistics.mean(r["wall_ms"] for r in recs) / 1e3 if recs else float("nan"),
        "ttft_ms": statistics.mean(r["ttft_ms"] for r in recs) if recs else float("nan"),
    }


def pct(x):
    return "—" if x != x else f"{100 * x:.1f}%"


def acc_cell(s):
    return f"{pct(s['acc'])} [{100 * max(0.0, s['lo']):.0f}–{100 * min(1.0, s['hi']):.0f}]" if s["n"] else "—"


def check(run, meta):
    """Schema and counts of the run's outputs; returns a list of problems."""
    bad = []
    for name, want in meta["evals"].items():
        path = os.path.join(run, f"{name}.jsonl")
        if not os.path.exists(path):
            bad.append(f"{path}: missing")
            continue
        recs = load(path)
        if len(recs) != want:
            bad.append(f"{path}: {len(recs)} records, expected {want}")
        for r in recs:
            if not RECORD_KEYS <= set(r):
                bad.append(f"{path}: record {r.get('id')} lacks {sorted(RECORD_KEYS - set(r))}")
                break
            if len(r["paths"]) != r["n_paths"]:
                bad.append(f"{path}: record {r['id']} has {len(r['paths'])} paths, not {r['n_paths']}")
                break
            if any(not PATH_KEYS <= set(p) for p in r["paths"]):
                bad.append(f"{path}: record {r['id']} has a path without {sorted(PATH_KEYS)}")
                break
            if r["mode"] == "auto" and r.get("routed") not in ("chat", "reasoning"):
                bad.append(f"{path}: auto record {r['id']} has no routing decision")
                break
            if r["select"] in ("best", "weighted") and any(p["score"] is None for p in r["paths"]):
                bad.append(f"{path}: record {r['id']} has paths without verifier scores")
                break
    for head in ("switcher.kst", "verifier.kst"):
        if not os.path.exists(os.path.join(run, head)):
            bad.append(f"{head}: missing")
    for log in ("train_switcher.log", "train_verifier.log"):
        p = os.path.join(run, log)
        if not os.path.exists(p) or "auc" not in open(p).read().lower():
            bad.append(f"{log}: no fit summary")
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--out", default=None)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    meta = json.load(open(os.path.join(a.run, "meta.json")))
    if a.check:
        bad = check(a.run, meta)
        for b in bad:
            print("check:", b, file=sys.stderr)
        if bad:
            sys.exit(1)
        print(f"check: {sum(meta['evals'].values())} records in {len(meta['evals'])} files, heads present")
    if a.out:
        with open(a.out, "w") as f:
            f.write(render(a.run, meta))
        print(f"wrote {a.out}")


def render(run, meta):
    ev = {name: Rows(load(os.path.join(run, f"{name}.jsonl"))) for name in meta["evals"]}
    bench = json.load(open(os.path.join(run, "bench.json"))) if os.path.exists(os.path.join(run, "bench.json")) else {}
    L = []
    w = L.append
    n_test = meta["n_test"]
    w("# The trained demo: measured results\n")
    w(f"Made by `scripts/demo.sh{' --quick' if meta.get('quick') else ''}` on {meta.get('device', '?')}, "
      f"{meta.get('date', '?')}; total wall time {meta['total_s'] / 60:.1f} min. Model: SmolLM2-135M-Instruct "
      f"(Q4_1 GGUF). Test split: {n_test} problems of `demo/tasks.py --split test --seed 0`. "
      f"Brackets: 95% Wilson intervals. Tokens: generated tokens per path (thinking + answer).\n")
    chat = stats(ev["chat"].of(mode="chat", n=1, select="first"))
    one = stats(ev["main"].of(mode="reasoning", n=1, select="first"))
    w("## Accuracy\n")
    w("| configuration | accuracy | oracle | tokens / path (thinking + answer) | wall s / problem | target |")
    w("|---|---|---|---|---|---|")

    def row(name, s, target=""):
        w(f"| {name} | {acc_cell(s)} | {pct(s['oracle'])} | {s['tokens']:.1f} ({s['thinking']:.1f} + "
          f"{s['answer']:.1f}) | {s['wall_s']:.2f} | {target} |")

    row("chat mode (base only), 1 path, greedy", chat, "measured (expected ≤ 10%)")
    gain = one["acc"] - chat["acc"]
    row("reasoning adapter (shared-KV trained), 1 path, greedy", one,
        f"≥ chat + 25 points: {100 * gain:+.1f} {'✓' if gain >= 0.25 else '✗'}")
    std = stats(ev["standard"].of(mode="reasoning", n=1, select="first"))
    row("reasoning adapter (standard-trained), 1 path, greedy, shared-KV decoding", std,
        "measured (side by side with the row above)")
    n8 = meta["paths"]
    sel = {s: stats(ev["paths"].of(mode="reasoning", n=n8, select=s)) for s in ("first", "vote", "best", "weighted")}
    row(f"{n8} paths, T = {meta['temperature']}: first path", sel["first"])
    row(f"{n8} paths: majority vote", sel["vote"])
    row(f"{n8} paths: verifier best", sel["best"])
    wt = sel["weighted"]
    ok = wt["acc"] >= one["acc"] + 0.05 and wt["acc"] >= sel["vote"]["acc"]
    row(f"{n8} paths: verifier-weighted vote", wt,
        f"≥ 1 path + 5 ({100 * (wt['acc'] - one['acc']):+.1f}) and ≥ vote ({100 * (wt['acc'] - sel['vote']['acc']):+.1f}) "
        f"{'✓' if ok else '✗'}")
    w(f"| {n8} paths: oracle (some path right) | {pct(sel['first']['oracle'])} | | | | |")
    con = stats(ev["concise"].of(mode="reasoning", n=1, select="first"))
    fewer = 1 - con["tokens"] / one["tokens"]
    drop = one["acc"] - con["acc"]
    row("concise adapter, 1 path, greedy", con,
        f"≥ 25% fewer tokens ({100 * fewer:.1f}%), ≤ 5 points less ({100 * drop:+.1f}) "
        f"{'✓' if fewer >= 0.25 and drop <= 0.05 else '✗'}")
    w("")

    w("## Budget forcing (`--think-budget`, first adapter, 1 path, greedy)\n")
    w(f"Median natural thinking length: {meta['median_thinking']} tokens (the first adapter's greedy "
      "paths on the test split).\n")
    w("| budget | thinking tokens | accuracy | forced | tokens / path |")
    w("|---|---|---|---|---|")
    w(f"| none | — | {acc_cell(one)} | — | {one['tokens']:.1f} |")
    for frac, b in zip(meta["budget_fractions"], meta["budgets"]):
        s = stats(ev["budget"].of(mode="reasoning", n=1, budget=b))
        w(f"| {int(100 * frac)}% | {b} | {acc_cell(s)} | {pct(s['forced'])} | {s['tokens']:.1f} |")
    w("")

    w("## Switcher on a held-out 50/50 mix of chat and task prompts\n")
    mix = ev["mix"]
    auto = mix.of(mode="auto", n=1)
    always = mix.of(mode="reasoning", n=1)
    route_ok = sum((r["routed"] == r["kind"]) for r in auto) / len(auto) if auto else float("nan")
    auto_task = stats([r for r in auto if r["kind"] == "reasoning"])
    always_task = stats([r for r in always if r["kind"] == "reasoning"])
    tok_auto = stats(auto)["tokens_sum"]
    tok_always = stats(always)["tokens_sum"]
    ratio = tok_auto / tok_always if tok_always else float("nan")
    d = always_task["acc"] - auto_task["acc"]
    w(f"{len(auto)} prompts ({sum(r['kind'] == 'chat' for r in auto)} chat from `demo/chat_prompts.py` test, "
      f"{sum(r['kind'] == 'reasoning' for r in auto)} test-split problems).\n")
    w("| | routing accuracy | task accuracy | generated tokens over the mix | target |")
    w("|---|---|---|---|---|")
    w(f"| auto (switcher) | {pct(route_ok)} | {acc_cell(auto_task)} | {tok_auto} ({pct(ratio)} of always) | "
      f"routing ≥ 95% {'✓' if route_ok >= 0.95 else '✗'}; within 2 points ({100 * -d:+.1f}) "
      f"{'✓' if d <= 0.02 else '✗'}; ≤ 60% tokens {'✓' if ratio <= 0.6 else '✗'} |")
    w(f"| always reasoning | — | {acc_cell(always_task)} | {tok_always} | |")
    w("")
    for log, title in (("train_switcher.log", "switcher"), ("train_verifier.log", "verifier")):
        p = os.path.join(run, log)
        if os.path.exists(p):
            w(f"`kestrel train-head --kind {title}` said:\n```")
            w(open(p).read().strip()[-1500:])
            w("```\n")

    w("## Latency\n")
    p1 = stats(ev["main"].of(mode="reasoning", n=1, select="first"))
    pn = sel["first"]
    w("| | value |")
    w("|---|---|")
    w(f"| wall time per problem, 1 path greedy / {n8} paths T = {meta['temperature']} | "
      f"{p1['wall_s']:.2f} s / {pn['wall_s']:.2f} s (×{pn['wall_s'] / p1['wall_s']:.2f}) |")
    if bench:
        ratios = bench.get("path_step_ratio", {})
        w(f"| decode step, {n8} paths / 1 path (`kestrel bench`) | ×{ratios.get(str(n8), float('nan')):.2f} |")
        w(f"| decode tok/s, 1 path (`kestrel bench`) | {bench.get('decode_tok_s', float('nan')):.1f} |")
        sh, re_ = bench.get("ttft_reasoning_shared_ms"), bench.get("ttft_reasoning_reencode_ms")
        if sh and re_:
            w(f"| reasoning after a chat turn: TTFT with KV sharing / re-encoding the prompt | "
              f"{sh:.0f} ms / {re_:.0f} ms (×{re_ / sh:.1f}) |")
        w(f"| achieved / roofline bandwidth | {bench.get('achieved_gb_s', float('nan')):.2f} / "
          f"{bench.get('roofline_gb_s', float('nan')):.1f} GB/s ({bench.get('roofline_source', '?')}) |")
    w("")
    w("## Stage wall times\n")
    w("| stage | s |")
    w("|---|---|")
    for k, v in meta["stages"].items():
        w(f"| {k} | {v:.0f} |")
    w(f"| total | {meta['total_s']:.0f} |")
    w("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
