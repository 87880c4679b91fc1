#!/usr/bin/env python3
"""A PyTorch reference of the engine's reasoning decode, for checking adapters during training.

Decodes task problems with a PEFT adapter the way `kestrel eval --mode reasoning` does: the prompt is
encoded by the base weights, the first token comes from the prompt's last row (the base's logits),
and every later token from the adapter over that base KV (`--adapter-prompt`: the adapter encodes
the prompt too). Grading follows `kestrel eval`: the last number after the last `</think>`.

    python3 demo/py_eval.py --adapter demo/adapters/reasoning --split val --n 50 [--paths 8 --temperature 0.7]
    [--out records.jsonl]   # one line per problem: prompt, answer, paths (text, tokens, correct)

The demo's measurements come from the engine; this script only checks training (and the engine's
numbers against it).
"""
import argparse
import json
import os
import re
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tasks  # noqa: E402
from train_adapter import DEFAULT_GGUF, end_id, load_base, prompt_ids  # noqa: E402

NUM = re.compile(r"-?\d+(?:\.\d+)?")


def grade(text, answer):
    tail = text.split(tasks.THINK_END)[-1]
    nums = NUM.findall(tail.replace(",", ""))
    return bool(nums) and float(nums[-1]) == float(answer)


@torch.no_grad()
def decode(model, tok, prompt, n, temperature, max_tokens, adapter_prompt, gen):
    """n paths for one prompt (a list of ids): [(token ids, text), ...]."""
    stop = end_id(tok)
    ids = torch.tensor([prompt] * n)
    if adapter_prompt:
        out = model(input_ids=ids, use_cache=True)
    else:
        with model.disable_adapter():
            out = model(input_ids=ids, use_cache=True)
    cache, logits = out.past_key_values, out.logits[:, -1]
    toks = [[] for _ in range(n)]
    done = [False] * n
    pos = len(prompt)
    for _ in range(max_tokens):
        if temperature > 0:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen).squeeze(1)
        else:
            nxt = logits.argmax(-1)
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                toks[i].append(t)
                done[i] = t == stop
        if all(done):
            break
        out = model(input_ids=nxt.unsqueeze(1), past_key_values=cache, use_cache=True,
                    position_ids=torch.full((n, 1), pos))
        cache, logits = out.past_key_values, out.logits[:, -1]
        pos += 1
    return [(t, tok.decode([x for x in t if x != stop])) for t in toks]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", help="PEFT adapter directory (none: chat mode, base only)")
    ap.add_argument("--gguf", default=DEFAULT_GGUF)
    ap.add_argument("--split", default="val")
    ap.add_argument("--tasks", help="a task JSONL instead of --split/--seed/--n")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--paths", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--adapter-prompt", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    tok, model = load_base(a.gguf)
    if a.adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, a.adapter)
    model.eval()
    rows = ([json.loads(line) for line in open(a.tasks) if line.strip()] if a.tasks
            else tasks.problems(a.split, a.seed, a.n))
    f = open(a.out, "w") if a.out else None
    first_ok = any_ok = ntok = 0
    t0 = time.time()
    for r in rows:
        # Without an adapter the model is the plain base: "adapter_prompt" then just means one model.
        paths = decode(model, tok, prompt_ids(tok, r["prompt"]), a.paths, a.temperature, a.max_tokens,
                       a.adapter_prompt or not a.adapter, gen)
        oks = [grade(text, r["answer"]) for _, text in paths]
        first_ok += oks[0]
        any_ok += any(oks)
        ntok += sum(len(t) for t, _ in paths)
        if a.verbose:
            print(oks[0], r["prompt"], r["answer"], repr(paths[0][1]), flush=True)
        if f:
            f.write(json.dumps({"id": r["id"], "prompt": r["prompt"], "answer": r["answer"],
                                "paths": [{"text": x, "tokens": len(t), "correct": ok}
                                          for (t, x), ok in zip(paths, oks)]}) + "\n")
    n = len(rows)
    print(json.dumps({"problems": n, "first_path_acc": first_ok / n, "oracle": any_ok / n,
                      "mean_tokens_per_path": ntok / (n * a.paths), "wall_s": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
