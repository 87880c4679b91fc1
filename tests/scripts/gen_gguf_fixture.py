#!/usr/bin/env python3
"""Generate the GGUF importer fixtures in tests/fixtures/gguf/.

Pinned environment: tests/scripts/requirements-gguf.txt (a venv, never committed).

  python tests/scripts/gen_gguf_fixture.py             # tiny_llama / tiny_qwen2 fixtures
  python tests/scripts/gen_gguf_fixture.py --smollm2   # + smollm2_tokens.json from the real asset

Per tiny model `<name>`:
  <name>.gguf           written by gguf-py with known random weights (seeded), every supported
                        tensor type (F32, F16, BF16, Q4_0, Q4_1, Q8_0), llama q/k rows permuted the
                        way llama.cpp's convert_hf_to_gguf.py does.
  <name>.expected.bin   little-endian f32: every tensor dequantized by gguf-py's numpy reference
                        (gguf.quants.dequantize), in HF layout ([M, K] row-major, q/k rows
                        un-permuted with transformers' reverse permutation).
  <name>.expected.json  {config, tensors: {hf_name: {shape, offset (in f32 elements), gguf_type}},
                        tokens: [{text, ids}] from transformers' GGUF tokenizer (tiny_qwen2 only)}.
smollm2_tokens.json     strings -> ids by transformers' AutoTokenizer built from
                        SmolLM2-135M-Instruct.Q4_1.gguf (see `smollm2_tokens`).
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gguf")

# Strings for tokenizer checks: code, emoji, CJK, numbers, whitespace runs, special tokens.
TOKEN_STRINGS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing   ",
    "tabs\tand\nnewlines\n\n\nthree",
    "numbers: 1 12 123 1234 12345 3.14159 -42 1e10",
    "a  1  22   333",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "emoji: 😀🎉👍🏽 and ❤️",
    "中文字符测试，日本語のテキスト、한국어",
    "Ünïcödé àccents ß ø æ",
    "don't can't I'm we've they'll she'd IT'S",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "mixed<|im_end|>special<|im_start|>tokens",
    "URL: https://example.com/path?q=1&r=two#frag",
    "",
    " ",
    "\n",
]


def reverse_permute(w, n_head):
    """transformers' GGUF reverse of llama.cpp's q/k permutation (rows)."""
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py `LlamaModel.permute`."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_bpe(n_merges):
    """A byte-level BPE vocab: 256 byte symbols + merges learned greedily on a small corpus."""
    b2u = bytes_to_unicode()
    corpus = " ".join(TOKEN_STRINGS[:8]) * 3 + " the the then there these hello help world words 1234"
    words = {}
    for w in re.findall(r" ?\w+| ?[^\s\w]+|\s+", corpus):
        sym = tuple(b2u[b] for b in w.encode("utf-8"))
        words[sym] = words.get(sym, 0) + 1
    vocab = [b2u[b] for b in range(256)]
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for sym, c in words.items():
            for a, b in zip(sym, sym[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab.append(a + b)
        new = {}
        for sym, c in words.items():
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return vocab, merges


CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def write_model(name, arch, types, tied, rng):
    hidden, heads, kv_heads, ffn, layers = 32, 4, 2, 64, 1
    head_dim = hidden // heads
    if arch == "llama":
        tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"tok{i}" for i in range(37)]
        token_types = [3, 3, 3] + [1] * 37
        merges = ["t o", "to k"]
        pre = "gpt2"
    else:
        base, merges = tiny_bpe(40)
        tokens = base + ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>"]
        token_types = [1] * len(base) + [3, 3, 3, 4]
        pre = "qwen2"
    vocab = len(tokens)

    w = gguf.GGUFWriter(os.path.join(OUT, f"{name}.gguf"), arch)
    w.add_block_count(layers)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    expected_bits = []
    entries = {}

    def add(gguf_name, hf_name, hf_array, qtype, rope_heads=None):
        hf_array = hf_array.astype(np.float32)
        stored = permute(hf_array, rope_heads) if rope_heads else hf_array
        if qtype in (Q.F32,):
            data, deq = stored, stored
        elif qtype == Q.F16:
            data = stored.astype(np.float16)
            deq = data.astype(np.float32)
        elif qtype == Q.BF16:
            data = gguf.quants.quantize(stored, Q.BF16)
            deq = gguf.quants.dequantize(data, Q.BF16)
        else:
            data = gguf.quants.quantize(stored, qtype)
            deq = gguf.quants.dequantize(data, qtype)
        if qtype == Q.BF16 or qtype not in (Q.F32, Q.F16):
            w.add_tensor(gguf_name, data, raw_dtype=qtype)
        else:
            w.add_tensor(gguf_name, data)
        deq = deq.reshape(hf_array.shape).astype(np.float32)
        if rope_heads:
            deq = reverse_permute(deq, rope_heads)
            # Quantization is row-local, so un-permuting after dequantization equals
            # dequantizing the HF rows: a self-check of the two permutations.
            requant = gguf.quants.dequantize(gguf.quants.quantize(hf_array, qtype), qtype) if qtype not in (Q.F32, Q.F16) else hf_array.astype(np.float16).astype(np.float32) if qtype == Q.F16 else hf_array
            assert np.array_equal(deq.view(np.uint32), np.asarray(requant, np.float32).reshape(deq.shape).view(np.uint32))
        entries[hf_name] = {"shape": list(hf_array.shape), "offset": sum(len(b) for b in expected_bits), "gguf_type": qtype.name}
        expected_bits.append(deq.reshape(-1))

    def rnd(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    add("token_embd.weight", "model.embed_tokens.weight", rnd(vocab, hidden), types["embd"])
    for i in range(layers):
        p, hp = f"blk.{i}", f"model.layers.{i}"
        add(f"{p}.attn_norm.weight", f"{hp}.input_layernorm.weight", 1.0 + rnd(hidden, scale=0.1), Q.F32)
        rope = arch == "llama"
        add(f"{p}.attn_q.weight", f"{hp}.self_attn.q_proj.weight", rnd(heads * head_dim, hidden), types["q"], heads if rope else None)
        add(f"{p}.attn_k.weight", f"{hp}.self_attn.k_proj.weight", rnd(kv_heads * head_dim, hidden), types["k"], kv_heads if rope else None)
        add(f"{p}.attn_v.weight", f"{hp}.self_attn.v_proj.weight", rnd(kv_heads * head_dim, hidden), types["v"])
        if arch == "qwen2":
            add(f"{p}.attn_q.bias", f"{hp}.self_attn.q_proj.bias", rnd(heads * head_dim), Q.F32)
            add(f"{p}.attn_k.bias", f"{hp}.self_attn.k_proj.bias", rnd(kv_heads * head_dim), Q.F32)
            add(f"{p}.attn_v.bias", f"{hp}.self_attn.v_proj.bias", rnd(kv_heads * head_dim), Q.F32)
        add(f"{p}.attn_output.weight", f"{hp}.self_attn.o_proj.weight", rnd(hidden, heads * head_dim), types["o"])
        add(f"{p}.ffn_norm.weight", f"{hp}.post_attention_layernorm.weight", 1.0 + rnd(hidden, scale=0.1), Q.F32)
        add(f"{p}.ffn_gate.weight", f"{hp}.mlp.gate_proj.weight", rnd(ffn, hidden), types["gate"])
        add(f"{p}.ffn_up.weight", f"{hp}.mlp.up_proj.weight", rnd(ffn, hidden), types["up"])
        add(f"{p}.ffn_down.weight", f"{hp}.mlp.down_proj.weight", rnd(hidden, ffn), types["down"])
    add("output_norm.weight", "model.norm.weight", 1.0 + rnd(hidden, scale=0.1), Q.F32)
    if not tied:
        add("output.weight", "lm_head.weight", rnd(vocab, hidden), types["out"])

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    np.concatenate(expected_bits).astype("<f4").tofile(os.path.join(OUT, f"{name}.expected.bin"))
    manifest = {
        "config": {"arch": arch, "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": ffn,
                   "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                   "head_dim": head_dim, "tie_word_embeddings": tied},
        "tensors": entries,
    }
    if arch == "qwen2":
        manifest["tokens"] = hf_token_ids(OUT, f"{name}.gguf", TOKEN_STRINGS + ["<think>reasoning</think>"])
        manifest["chat"] = hf_chat(OUT, f"{name}.gguf")
    with open(os.path.join(OUT, f"{name}.expected.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")


def hf_tokenizer(directory, gguf_file):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)


def hf_token_ids(directory, gguf_file, strings):
    tok = hf_tokenizer(directory, gguf_file)
    return [{"text": s, "ids": tok(s, add_special_tokens=True)["input_ids"]} for s in strings]


CHAT_MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3+3? 😀"},
]


def hf_chat(directory, gguf_file):
    tok = hf_tokenizer(directory, gguf_file)
    text = tok.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
    return {"messages": CHAT_MESSAGES, "add_generation_prompt": True, "text": text}


def smollm2_tokens():
    """Expected ids for the real SmolLM2 GGUF tokenizer.

    transformers (5.23) builds a GGUF byte-level tokenizer with GPT-2's ByteLevel regex and has
    no split for `tokenizer.ggml.pre = smollm`; llama.cpp (and SmolLM2's own tokenizer.json)
    first split every digit (`Digits(individual_digits=True)`). Kestrel follows llama.cpp / the
    original tokenizer, so the reference here is transformers' GGUF tokenizer with that digit
    split put in front of its pre-tokenizer. Where the unpatched transformers tokenizer gives
    other ids, they are recorded as `hf_gguf_unpatched_ids` (documentation only).
    """
    from tokenizers import pre_tokenizers

    assets = os.environ.get("KESTREL_ASSETS") or os.path.join(os.path.expanduser("~"), ".cache", "kestrel", "assets")
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not os.path.exists(os.path.join(assets, name)):
        sys.exit(f"{name} not found in {assets}: run scripts/fetch-assets.sh")
    tok = hf_tokenizer(assets, name)
    plain = [tok(s)["input_ids"] for s in TOKEN_STRINGS]
    backend = tok.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), backend.pre_tokenizer]
    )
    out = []
    for s, unpatched in zip(TOKEN_STRINGS, plain):
        ids = tok(s)["input_ids"]
        entry = {"text": s, "ids": ids}
        if ids != unpatched:
            entry["hf_gguf_unpatched_ids"] = unpatched
        out.append(entry)
    chat = tok.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
    doc = {
        "source": name,
        "reference": "transformers AutoTokenizer(gguf_file=...) + Digits(individual_digits) pre-split",
        "strings": out,
        "chat": {"messages": CHAT_MESSAGES, "add_generation_prompt": True, "text": chat},
        "dequant_samples": dequant_samples(os.path.join(assets, name)),
    }
    with open(os.path.join(OUT, "smollm2_tokens.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")


HF_LEAF = {
    "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
HF_TOP = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
          "output.weight": "lm_head.weight"}
N_SAMPLES = 8


def dequant_samples(path):
    """Per tensor (HF name, HF layout): gguf-py's dequantized f32 bits at positions
    `i * (n - 1) // (N_SAMPLES - 1)` for i < N_SAMPLES, and the f64 sum of all values -- an
    independent cross-check of the importer."""
    r = gguf.GGUFReader(path)
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
    heads, kv_heads = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    out = {}
    for t in r.tensors:
        deq = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        deq = deq.reshape([int(d) for d in reversed(t.shape)])
        if t.name.startswith("blk."):
            _, layer, leaf = t.name.split(".", 2)
            hf = f"model.layers.{layer}.{HF_LEAF[leaf]}"
            if leaf == "attn_q.weight":
                deq = reverse_permute(deq, heads)
            elif leaf == "attn_k.weight":
                deq = reverse_permute(deq, kv_heads)
        else:
            hf = HF_TOP[t.name]
        flat = np.ascontiguousarray(deq).reshape(-1)
        pos = np.array([i * (flat.size - 1) // (N_SAMPLES - 1) for i in range(N_SAMPLES)], dtype=np.int64)
        out[hf] = {"gguf_type": t.tensor_type.name,
                   "bits": flat[pos].view(np.uint32).tolist(), "sum": float(flat.astype(np.float64).sum())}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", action="store_true", help="also write smollm2_tokens.json from the real asset")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)
    write_model("tiny_llama", "llama",
                dict(embd=Q.Q8_0, q=Q.Q4_0, k=Q.Q4_1, v=Q.F16, o=Q.BF16, gate=Q.Q4_1, up=Q.F32, down=Q.Q4_0, out=Q.Q8_0),
                tied=False, rng=rng)
    write_model("tiny_qwen2", "qwen2",
                dict(embd=Q.Q8_0, q=Q.Q4_0, k=Q.Q4_0, v=Q.Q4_1, o=Q.Q4_1, gate=Q.Q4_0, up=Q.Q4_1, down=Q.Q8_0),
                tied=True, rng=rng)
    if args.smollm2:
        smollm2_tokens()


if __name__ == "__main__":
    main()
