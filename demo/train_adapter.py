#!/usr/bin/env python3
"""Train a LoRA reasoning adapter for SmolLM2-135M-Instruct on the demo's task family (CPU, PEFT).

Semantics (--mode):
  shared-kv  the paper's recipe, and how `kestrel ... --mode reasoning` decodes: the prompt is encoded
             by the BASE weights (adapter off, no gradient), the continuation runs with the adapter on
             and attends to that base KV; the loss is on the continuation only.
  standard   the usual LoRA fine-tune: the adapter is on for the prompt too (what `--adapter-prompt`
             decodes); the loss is still on the continuation only.

The first generated token. The engine takes a request's first token from the prompt's last row,
which the base weights compute in shared-KV mode; the adapter decodes from the second token on. So
in shared-KV mode the first continuation token is the base's own (sampled here from the base's
distribution at --first-temperature, as decoding would), it carries no loss, and the adapter learns
to go on from it: `<think>` follows whatever the base said first ("To<think>\\n23+7=30 ..."). In
standard mode the prompt's last row is the adapter's, so the target starts with `<think>` itself.

The base is the GGUF the engine runs (transformers dequantizes Q4_1 to f32, the values the engine
computes with), and prompts are rendered by the GGUF's own chat template, as the engine renders them.

Data: --tasks-seed/--n-train problems from `demo/tasks.py --split train` (their reference traces), or
--data FILE, JSONL with {"prompt", "target"} (the concise adapter's selected paths; a target holds
everything the adapter should write after the first token, e.g. "<think>\\n...\\n</think>\\n24").
--init DIR continues training an existing adapter.

Batches group prompts of one token length (no padding on the prompt side, so the base KV is exactly
what the engine computes); continuations are right-padded and the padding carries no loss.

The adapter is saved as PEFT `adapter_config.json` + `adapter_model.safetensors` in f16, with
TRAINING.json (command, rank, steps, wall time, losses, versions).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tasks  # noqa: E402

DEFAULT_GGUF = os.path.expanduser("~/.cache/kestrel/assets/SmolLM2-135M-Instruct.Q4_1.gguf")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load_base(gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    return tok, model


def prompt_ids(tok, text):
    """The engine's rendering of one user message with the generation prompt (the GGUF's template)."""
    out = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                  tokenize=True, return_dict=True)
    return list(out["input_ids"])


def end_id(tok):
    return tok.convert_tokens_to_ids("<|im_end|>")


def shared_kv_logits(model, prompt, cont):
    """Logits over `cont` [B, C] given `prompt` [B, P]: prompt by the base, continuation with the adapter.

    Returns (first, rest): first [B, V] = the base's logits at the prompt's last row (predicts cont[:,0]),
    rest [B, C, V] = the adapter's logits at each continuation position (rest[:, i] predicts cont[:, i+1]).
    """
    with torch.no_grad(), model.disable_adapter():
        out = model(input_ids=prompt, use_cache=True)
    first = out.logits[:, -1]
    p = prompt.shape[1]
    c = cont.shape[1]
    mask = torch.ones(prompt.shape[0], p + c, dtype=torch.long)
    pos = torch.arange(p, p + c).unsqueeze(0).expand(prompt.shape[0], c)
    rest = model(input_ids=cont, past_key_values=out.past_key_values, attention_mask=mask,
                 position_ids=pos, use_cache=True).logits
    return first, rest


def standard_logits(model, prompt, cont):
    """Logits with the adapter on for prompt and continuation: logits[:, P-1+i] predicts cont[:, i]."""
    ids = torch.cat([prompt, cont], 1)
    return model(input_ids=ids).logits[:, prompt.shape[1] - 1:]


def check_shared_kv(model, tok):
    """With the adapter disabled, the split forward must equal one full forward (training-code check)."""
    p = torch.tensor([prompt_ids(tok, "What is 12 + 7 - 3?")])
    c = torch.tensor([tok.encode("<think>\n12+7=19\n19-3=16\n</think>\n16", add_special_tokens=False)])
    with torch.no_grad(), model.disable_adapter():
        full = model(input_ids=torch.cat([p, c], 1)).logits[:, p.shape[1] - 1:]
        first, rest = shared_kv_logits(model, p, c)
    split = torch.cat([first.unsqueeze(1), rest], 1)
    err = (split - full).abs().max().item()
    return err


class Example:
    __slots__ = ("prompt", "target")

    def __init__(self, prompt, target):
        self.prompt = prompt
        self.target = target


def load_examples(args, tok):
    if args.data:
        rows = [json.loads(line) for line in open(args.data) if line.strip()]
        raw = [(r["prompt"], r["target"]) for r in rows]
    else:
        raw = [(r["prompt"], r["target"]) for r in tasks.problems("train", args.tasks_seed, args.n_train)]
    out = []
    for prompt, target in raw:
        out.append(Example(prompt_ids(tok, prompt), tok.encode(target, add_special_tokens=False) + [end_id(tok)]))
    return out


def batches(examples, batch, rng):
    """Endless batches of examples that share one prompt length, buckets drawn by their size."""
    buckets = {}
    for e in examples:
        buckets.setdefault(len(e.prompt), []).append(e)
    keys = sorted(buckets)
    weights = [len(buckets[k]) for k in keys]
    while True:
        k = rng.choices(keys, weights)[0]
        b = buckets[k]
        yield rng.sample(b, min(batch, len(b)))


def pad(seqs, value):
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (n - len(s)) for s in seqs])


def step_loss(model, batch, args, gen):
    """Mean cross-entropy over the continuation tokens the adapter writes."""
    prompt = torch.tensor([e.prompt for e in batch])
    if args.mode == "shared-kv":
        with torch.no_grad(), model.disable_adapter():
            out = model(input_ids=prompt, use_cache=True)
        # The first token is the base's own, sampled as decoding would; no loss on it.
        first = sample(out.logits[:, -1], args.first_temperature, gen)
        conts = [[t] + e.target for t, e in zip(first, batch)]
        cont = pad(conts, 0)
        p, c = prompt.shape[1], cont.shape[1]
        mask = torch.ones(prompt.shape[0], p + c, dtype=torch.long)
        pos = torch.arange(p, p + c).unsqueeze(0).expand(prompt.shape[0], c)
        logits = model(input_ids=cont, past_key_values=out.past_key_values, attention_mask=mask,
                       position_ids=pos).logits[:, :-1]
        labels = [c_[1:] for c_ in conts]
    else:
        conts = [e.target for e in batch]
        cont = pad(conts, 0)
        logits = standard_logits(model, prompt, cont)[:, :-1]
        labels = conts
    lab = pad(labels, -100)[:, : logits.shape[1]]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1),
                                             ignore_index=-100)


def sample(logits, temperature, gen):
    if temperature <= 0:
        return logits.argmax(-1).tolist()
    probs = torch.softmax(logits / temperature, -1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(1).tolist()


def save_f16(model, out_dir, record):
    from safetensors.torch import load_file, save_file
    model.save_pretrained(out_dir)
    card = os.path.join(out_dir, "README.md")  # PEFT's empty model card template
    if os.path.exists(card):
        os.remove(card)
    cfg_path = os.path.join(out_dir, "adapter_config.json")
    cfg = json.load(open(cfg_path))
    cfg["base_model_name_or_path"] = "SmolLM2-135M-Instruct.Q4_1.gguf"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    path = os.path.join(out_dir, "adapter_model.safetensors")
    tensors = {k: v.to(torch.float16).contiguous() for k, v in load_file(path).items()}
    save_file(tensors, path)
    with open(os.path.join(out_dir, "TRAINING.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def versions():
    import peft
    import transformers
    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("shared-kv", "standard"), default="shared-kv")
    ap.add_argument("--out", required=True, help="output PEFT directory")
    ap.add_argument("--gguf", default=DEFAULT_GGUF)
    ap.add_argument("--data", help="JSONL of {prompt, target} instead of generated train problems")
    ap.add_argument("--init", help="continue from this PEFT adapter directory")
    ap.add_argument("--tasks-seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--first-temperature", type=float, default=1.0,
                    help="shared-kv: temperature of the base's first token (0 = greedy)")
    ap.add_argument("--max-minutes", type=float, default=27, help="stop at this training wall time")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared 2-core machine 2 threads ran 2-4x slower)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    t_start = time.time()
    tok, model = load_base(args.gguf)
    from peft import LoraConfig, PeftModel, get_peft_model
    if args.init:
        model = PeftModel.from_pretrained(model, args.init, is_trainable=True)
    else:
        cfg = LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules=TARGETS, lora_dropout=0.0,
                         bias="none", task_type="CAUSAL_LM")
        model = get_peft_model(model, cfg)
    model.train()
    err = check_shared_kv(model, tok)
    print(f"shared-KV split forward vs full forward (adapter off): max |diff| = {err:.2e}", flush=True)
    if err > 1e-3:
        raise SystemExit("the shared-KV forward does not match the full forward")
    examples = load_examples(args, tok)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)

    def lr_at(s, elapsed):
        """Warmup, then cosine decay over the steps or the time cap, whichever runs out first."""
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        frac = max((s - args.warmup) / max(1, args.steps - args.warmup), elapsed / (60 * args.max_minutes))
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    t_train = time.time()
    losses = []
    step = 0
    it = batches(examples, args.batch, rng)
    for step in range(args.steps):
        if (time.time() - t_train) / 60 > args.max_minutes:
            print(f"stopping at step {step}: --max-minutes {args.max_minutes} reached", flush=True)
            break
        batch = next(it)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, time.time() - t_train)
        loss = step_loss(model, batch, args, gen)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(round(loss.item(), 4))
        if step % 10 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            print(f"step {step:4d} loss {loss.item():.4f} lr {lr_at(step, el):.2e} {el:6.0f}s", flush=True)
    else:
        step = args.steps
    wall = time.time() - t_train
    record = {
        "command": "python3 demo/train_adapter.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "mode": args.mode, "rank": args.rank, "alpha": args.alpha, "target_modules": TARGETS,
        "steps": step, "batch": args.batch, "lr": args.lr, "examples": len(examples),
        "first_temperature": args.first_temperature, "init": args.init, "data": args.data,
        "train_wall_s": round(wall, 1), "total_wall_s": round(time.time() - t_start, 1),
        "threads": args.threads, "shared_kv_check_max_abs_diff": err,
        "loss_first10": losses[:10], "loss_last10": losses[-10:], "versions": versions(),
    }
    save_f16(model, args.out, record)
    print(json.dumps({k: record[k] for k in ("steps", "train_wall_s", "loss_last10")}), flush=True)


if __name__ == "__main__":
    main()
