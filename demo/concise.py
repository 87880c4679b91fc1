#!/usr/bin/env python3
"""Rejection sampling with a length reward: the concise adapter's training data (standard library only).

    python3 demo/concise.py RECORDS.jsonl [RECORDS2.jsonl ...] --tasks TASKS.jsonl --out data.jsonl

RECORDS are `kestrel eval --out` records of the first adapter sampling N paths per training problem
(`--paths 8 --temperature 0.7`), or `demo/py_eval.py --out` lines (the same decode in PyTorch). Per
problem, the reward is correctness first, then fewer tokens: the shortest correct path is kept, and a
problem with no correct path is dropped. Each kept path becomes {"prompt", "target"} for
`demo/train_adapter.py --data`, where the target is the path's text from `<think>` on (the first token
before it is the base's, which training samples afresh). Prints how many problems were kept and the
mean tokens of the kept paths against all paths.
"""
import argparse
import json
import statistics


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="+")
    ap.add_argument("--tasks", required=True, help="the task file the records were made from (for prompts)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    prompts = {}
    for line in open(a.tasks):
        if line.strip():
            t = json.loads(line)
            prompts[t["id"]] = t["prompt"]
    best = {}
    all_tokens = []
    for path in a.records:
        for line in open(path):
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("select", "first") != "first":
                continue  # one record per generation is enough: every select rule has the same paths
            for p in r["paths"]:
                all_tokens.append(p["tokens"])
                if not p["correct"] or "<think>" not in p["text"]:
                    continue
                if r["id"] not in best or p["tokens"] < best[r["id"]]["tokens"]:
                    best[r["id"]] = p
    with open(a.out, "w") as f:
        for pid, p in sorted(best.items()):
            text = p["text"]
            f.write(json.dumps({"id": pid, "prompt": prompts[pid], "target": text[text.index("<think>"):],
                                "tokens": p["tokens"]}) + "\n")
    kept = [p["tokens"] for p in best.values()]
    print(json.dumps({"problems_kept": len(kept), "paths": len(all_tokens),
                      "mean_tokens_all_paths": round(statistics.mean(all_tokens), 2) if all_tokens else None,
                      "mean_tokens_kept": round(statistics.mean(kept), 2) if kept else None}))


if __name__ == "__main__":
    main()
