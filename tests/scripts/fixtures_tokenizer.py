"""Tiny byte-level BPE tokenizers for the random test checkpoints.

Contract:
- `train_tokenizer(style)` returns a `tokenizers.Tokenizer` of exactly `TINY_VOCAB` (320) tokens,
  trained deterministically on `CORPUS`.
  - style "qwen2": Qwen2's exact pipeline (NFC normalizer, Qwen2 Split regex + ByteLevel without
    regex, ByteLevel decoder/post-processor — identical to transformers' `Qwen2Converter`, which is
    what transformers rebuilds from a qwen2 GGUF). 317 regular tokens (256 byte symbols + merges),
    then the specials `<|endoftext|>`=317, `<|im_start|>`=318, `<|im_end|>`=319 (Qwen puts them last).
  - style "smollm": SmolLM2's pipeline (no normalizer, Digits(individual) + ByteLevel with the GPT-2
    regex). Specials first, like SmolLM2: `<|endoftext|>`=0, `<|im_start|>`=1, `<|im_end|>`=2. Digits
    are always isolated, so no merge touches a digit, which makes the tokenizer transformers rebuilds
    from the GGUF (GPT-2 regex only, no Digits step) tokenize identically.
- `CHATML_TEMPLATE` is the plain ChatML template written into every tiny checkpoint.
- `TOKENIZER_STRINGS` are the strings every tokenizer fixture encodes.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

TINY_VOCAB = 320
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Write a haiku about the sea: waves fold into foam, the tide hums under the moon.",
    "Reasoning step by step: 12 * 7 = 84, and 84 + 16 = 100.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n",
    "fn main() { let x = vec![1, 2, 3]; println!(\"{:?}\", x); }",
    "Kestrel is an inference engine that runs language models on the GPU.",
    "Adapters switch on when a prompt needs reasoning; the base model chats.",
    "She said: \"I'll be there at 10:30, won't you?\"  They're all coming.",
    "Numbers like 3.14159, 2718 and 1,000,000 appear in the text.",
    "   indented   text\twith\ttabs and\n\nnew lines\r\n",
]
CORPUS = [s for _ in range(4) for s in _SENTENCES] + [" ".join(_SENTENCES)]

TOKENIZER_STRINGS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n\tprintln!(\"{}\", 42);\n}",
    "Emoji: 🦅🚀 and 👍🏽 done",
    "中文分词测试：你好，世界！",
    "日本語とカタカナ、한국어도",
    "spaces    and\ttabs\t\tand\n\n\nnewlines   ",
    "   leading and trailing   ",
    "Digits 1234567890 and 3.14159 and 1,000,000",
    "I'm sure they'll say it's fine, we've done it, you'd agree.",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>after eot",
    "Ünïcödé àccents: café naïve façade",
    "",
]


def _pre_tokenizer(style: str) -> pre_tokenizers.PreTokenizer:
    if style == "qwen2":
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    if style == "smollm":
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
            ]
        )
    raise ValueError(f"unknown tokenizer style {style}")


def train_tokenizer(style: str) -> Tokenizer:
    """Train the tiny BPE for `style` ("qwen2" | "smollm"); see the module contract."""
    specials_first = style == "smollm"
    tok = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    if style == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = _pre_tokenizer(style)
    tok.decoder = decoders.ByteLevel()
    if style == "qwen2":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    trainer = BpeTrainer(
        vocab_size=TINY_VOCAB if specials_first else TINY_VOCAB - len(SPECIALS),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIALS if specials_first else [],
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    if not specials_first:
        tok.add_special_tokens(SPECIALS)
    if tok.get_vocab_size(with_added_tokens=True) != TINY_VOCAB:
        raise RuntimeError(f"tokenizer has {tok.get_vocab_size()} tokens, wanted {TINY_VOCAB}")
    for i, s in enumerate(SPECIALS):
        want = i if specials_first else TINY_VOCAB - len(SPECIALS) + i
        if tok.token_to_id(s) != want:
            raise RuntimeError(f"special {s} got id {tok.token_to_id(s)}, wanted {want}")
    return tok


def vocab_and_merges(tok: Tokenizer) -> tuple[list[str], list[str]]:
    """Token strings ordered by id, and merges as "a b" strings in rank order (GGUF conventions)."""
    import json

    model = json.loads(tok.to_str())["model"]
    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [""] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges
