#!/usr/bin/env python3
"""The demo's task family: chains of two-digit additions and subtractions, written for `kestrel eval`.

A problem is "What is 23 + 7 - 5 + 9?": 3 to 5 operands, the first 10..49, the others 2..9, and
the running total stays within 0..99 (an operation that would leave that range is flipped). The
reference output of the reasoning adapter is one line per operation with the running total, then
the answer after the end-of-thinking marker:

    <think>
    23+7-5+9
    23+7=30
    check 30-7=23
    30-5=25
    25+9=34
    </think>
    34

The traces are deliberately uneven, like a reasoning model's: half of them restate the problem
first, and each step is followed by a redundant check (the inverse operation) with probability 1/2,
picked by a hash of the expression so a problem's trace is fixed. The concise adapter (rejection
sampling with a length reward) has to discover from its own samples that neither is needed.

SmolLM2-135M-Instruct in chat mode answers such chains in one go and fails almost always (0 of 29
in a first check with transformers, greedy); written out one operation per line, each step adds or
subtracts one digit to a two-digit number, which a LoRA adapter learns in minutes on a CPU.

Splits are disjoint by construction: a problem belongs to the split picked by a hash of its
expression (train 80%, val 10%, test 10%), so no expression can appear in two splits, whatever seeds
and sizes are asked for.

    python3 demo/tasks.py --split train|val|test --seed S --n N [--out FILE]
    python3 demo/tasks.py --chat train|test [--out FILE]      # the switcher's chat prompts

Each line: {"id", "prompt", "answer", "kind": "reasoning"} (chat prompts: "kind": "chat" and the
placeholder answer "(chat)", which nothing is graded against). Standard library only.
"""
import argparse
import hashlib
import json
import random
import sys

SPLITS = ("train", "val", "test")
THINK_END = "</think>"


def split_of(expr):
    """The split an expression belongs to: sha256 of its text, mod 10 (0-7 train, 8 val, 9 test)."""
    h = int.from_bytes(hashlib.sha256(expr.encode()).digest()[:8], "big") % 10
    return "train" if h < 8 else ("val" if h == 8 else "test")


def make_problem(rng):
    """One random chain: (operands, operators) with every running total in 0..99."""
    n = rng.randint(3, 5)
    nums = [rng.randint(10, 49)]
    ops = []
    total = nums[0]
    for _ in range(n - 1):
        b = rng.randint(2, 9)
        op = rng.choice("+-")
        if op == "+" and total + b > 99:
            op = "-"
        elif op == "-" and total - b < 0:
            op = "+"
        total = total + b if op == "+" else total - b
        nums.append(b)
        ops.append(op)
    return nums, ops


def expression(nums, ops, sep=" "):
    out = str(nums[0])
    for op, b in zip(ops, nums[1:]):
        out += f"{sep}{op}{sep}{b}"
    return out


def steps(nums, ops):
    """The running totals: [(a, op, b, result), ...]."""
    out = []
    total = nums[0]
    for op, b in zip(ops, nums[1:]):
        r = total + b if op == "+" else total - b
        out.append((total, op, b, r))
        total = r
    return out


def solve(nums, ops):
    return steps(nums, ops)[-1][3]


def prompt_of(nums, ops):
    return f"What is {expression(nums, ops)}?"


def trace(nums, ops, restate=False, checks=()):
    """A reasoning trace from `<think>` to the answer (the end-of-turn token follows).

    restate: first write the expression again; checks: the step indices followed by a check line.
    """
    lines = [expression(nums, ops, sep="")] if restate else []
    inverse = {"+": "-", "-": "+"}
    for i, (a, op, b, r) in enumerate(steps(nums, ops)):
        lines.append(f"{a}{op}{b}={r}")
        if i in checks:
            lines.append(f"check {r}{inverse[op]}{b}={a}")
    return "<think>\n" + "\n".join(lines) + f"\n{THINK_END}\n{solve(nums, ops)}"


def reference_trace(nums, ops):
    """The training trace of a problem: restatement and checks drawn from a hash of the expression."""
    expr = expression(nums, ops, sep="")
    rng = random.Random(hashlib.sha256(b"style:" + expr.encode()).digest())
    restate = rng.random() < 0.5
    checks = {i for i in range(len(ops)) if rng.random() < 0.5}
    return trace(nums, ops, restate, checks)


def problems(split, seed, n):
    """n distinct problems of one split, deterministic in (split, seed, n)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    rng = random.Random(f"{split}:{seed}")
    seen = set()
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 1000 * (n + 10):
            raise RuntimeError(f"cannot find {n} distinct {split} problems")
        nums, ops = make_problem(rng)
        expr = expression(nums, ops, sep="")
        if expr in seen or split_of(expr) != split:
            continue
        seen.add(expr)
        out.append({
            "id": f"{split}-{seed}-{len(out):05d}",
            "prompt": prompt_of(nums, ops),
            "answer": str(solve(nums, ops)),
            "kind": "reasoning",
            "target": reference_trace(nums, ops),
        })
    return out


def parse_prompt(prompt):
    """(nums, ops) back from a prompt's text (tests and training use it)."""
    body = prompt.removeprefix("What is ").removesuffix("?").split()
    nums = [int(body[0])]
    ops = []
    for i in range(1, len(body), 2):
        ops.append(body[i])
        nums.append(int(body[i + 1]))
    return nums, ops


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--split", choices=SPLITS)
    g.add_argument("--chat", choices=("train", "test"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--out", help="output file (default: stdout)")
    ap.add_argument("--no-target", action="store_true", help="omit the reference trace field")
    a = ap.parse_args(argv)
    if a.split:
        rows = problems(a.split, a.seed, a.n)
        if a.no_target:
            for r in rows:
                del r["target"]
    else:
        from chat_prompts import chat_rows
        rows = chat_rows(a.chat)
    f = open(a.out, "w") if a.out else sys.stdout
    for r in rows:
        f.write(json.dumps(r) + "\n")
    if a.out:
        f.close()


if __name__ == "__main__":
    main()
