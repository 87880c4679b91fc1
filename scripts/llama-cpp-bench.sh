#!/usr/bin/env bash
# Kestrel next to llama.cpp on the same GGUF and the same machine, measured in one interleaved run.
#
#   scripts/llama-cpp-bench.sh [--gguf FILE] [--prompt-tokens N] [--gen-tokens N] [--rounds R]
#                              [--out DIR] [--no-vulkan]
#
# Builds llama.cpp's `llama-bench` from the llama-cpp-python sdist on PyPI (pinned version and
# sha256; PyPI is reachable where model hubs and GitHub are not), with its CPU backend and its
# Vulkan backend, then runs R rounds of: `kestrel bench` (the GGUF converted to .kst),
# llama-bench on the CPU (`-dev none -ngl 0`), llama-bench on Vulkan (`-dev Vulkan0 -ngl 99`,
# the first Vulkan device: lavapipe on a machine without a GPU). Writes DIR/results.jsonl (one
# record per engine and round) and DIR/table.md (medians over rounds), and prints the table.
#
#   --gguf FILE         the model (default: SmolLM2-135M-Instruct.Q4_1.gguf from scripts/setup.sh)
#   --prompt-tokens N   prefill length (default 128)
#   --gen-tokens N      decode length (default 64)
#   --rounds R          interleaved rounds (default 3)
#   --out DIR           where the build and results go (default ${XDG_CACHE_HOME:-~/.cache}/kestrel/llama.cpp)
#   --no-vulkan         build and run llama.cpp's CPU backend only
#
# The build uses -DGGML_NATIVE=OFF with the x86 extensions /proc/cpuinfo lists (AVX, AVX2, FMA,
# F16C, BMI2, AVX-512 and its VBMI/VNNI/BF16 extensions), never AMX: cloud VMs report AMX that
# the hypervisor does not enable, and a native build then dies with SIGILL. Needs cmake, a C++
# compiler, glslc, the Vulkan and SPIR-V headers (installed with apt when missing), and a kestrel binary
# ($KESTREL, else target/release/kestrel, built if absent). About 15-30 minutes of build on 2 cores
# the first time (the Vulkan shaders dominate), then a few minutes per round.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
URL="https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-$VERSION.tar.gz"

ASSETS="${KESTREL_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/kestrel/assets}"
GGUF="$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT=128
GEN=64
ROUNDS=3
OUT="${XDG_CACHE_HOME:-$HOME/.cache}/kestrel/llama.cpp"
VULKAN=1
while [ $# -gt 0 ]; do
  case "$1" in
    --gguf) GGUF="$2"; shift ;;
    --prompt-tokens) PROMPT="$2"; shift ;;
    --gen-tokens) GEN="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --no-vulkan) VULKAN=0 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "llama-cpp-bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -s "$GGUF" ] || { echo "llama-cpp-bench.sh: $GGUF missing; run scripts/setup.sh or pass --gguf" >&2; exit 1; }
if [ -z "${KESTREL:-}" ]; then
  KESTREL=target/release/kestrel
  [ -x "$KESTREL" ] || cargo build --release -p kestrel-tools
fi
mkdir -p "$OUT"

# ---- tools
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
if [ "$VULKAN" = 1 ]; then
  command -v glslc >/dev/null || need+=(glslc)
  [ -e /usr/include/vulkan/vulkan.h ] || need+=(libvulkan-dev)
  [ -d /usr/share/cmake/SPIRV-Headers ] || need+=(spirv-headers)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} ..." >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# llama.cpp's Vulkan backend needs Vulkan headers ≥ 1.3.261 (VK_EXT_layer_settings); Debian 12
# ships 1.3.239. Then trixie's headers are unpacked beside the build (not installed); the loader
# library stays the system's.
VK_CMAKE=()
if [ "$VULKAN" = 1 ] && ! grep -qs "LayerSettingEXT" /usr/include/vulkan/vulkan_structs.hpp; then
  VKH="$OUT/vulkan-headers-1.4.309"
  if [ ! -f "$VKH/usr/include/vulkan/vulkan.hpp" ]; then
    echo "fetching Vulkan 1.4.309 headers (Debian trixie's libvulkan-dev, unpacked only) ..." >&2
    deb="$OUT/libvulkan-dev_1.4.309.0-1_amd64.deb"
    curl -sSfL -o "$deb" "http://deb.debian.org/debian/pool/main/v/vulkan-loader/libvulkan-dev_1.4.309.0-1_amd64.deb"
    dpkg-deb -x "$deb" "$VKH"
  fi
  VK_CMAKE=(-DVulkan_INCLUDE_DIR="$VKH/usr/include")
fi

# ---- source
SRC="$OUT/llama_cpp_python-$VERSION/vendor/llama.cpp"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  tarball="$OUT/llama_cpp_python-$VERSION.tar.gz"
  if [ ! -s "$tarball" ]; then
    echo "fetching llama-cpp-python $VERSION (sdist) from PyPI ..." >&2
    curl -sSfL -o "$tarball.part" "$URL"
    mv "$tarball.part" "$tarball"
  fi
  echo "$SHA256  $tarball" | sha256sum -c --quiet - \
    || { echo "llama-cpp-bench.sh: $tarball does not match its sha256" >&2; rm -f "$tarball"; exit 1; }
  tar -xzf "$tarball" -C "$OUT" "llama_cpp_python-$VERSION/vendor/llama.cpp"
fi

# ---- build
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { case "$flags" in *" $1 "*) return 0 ;; esac; return 1; }
on() { if has "$1"; then echo ON; else echo OFF; fi; }
ISA=(-DGGML_AVX="$(on avx)" -DGGML_AVX2="$(on avx2)" -DGGML_FMA="$(on fma)" -DGGML_F16C="$(on f16c)"
     -DGGML_BMI2="$(on bmi2)" -DGGML_AVX512="$(on avx512f)" -DGGML_AVX512_VBMI="$(on avx512vbmi)"
     -DGGML_AVX512_VNNI="$(on avx512_vnni)" -DGGML_AVX512_BF16="$(on avx512_bf16)"
     -DGGML_AVX_VNNI="$(on avx_vnni)" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
BUILD="$OUT/build-$VERSION$([ "$VULKAN" = 1 ] && echo -vulkan)"
BENCH="$BUILD/bin/llama-bench"
if [ ! -x "$BENCH" ]; then
  echo "building llama-bench (${ISA[*]}, Vulkan: $VULKAN) ..." >&2
  t0=$(date +%s)
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF "${ISA[@]}" \
    -DGGML_VULKAN="$([ "$VULKAN" = 1 ] && echo ON || echo OFF)" "${VK_CMAKE[@]}" -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >"$OUT/cmake.log" 2>&1 \
    || { tail -20 "$OUT/cmake.log" >&2; exit 1; }
  cmake --build "$BUILD" --target llama-bench -j "$(nproc)" >"$OUT/build.log" 2>&1 \
    || { tail -20 "$OUT/build.log" >&2; exit 1; }
  echo "built in $(( $(date +%s) - t0 )) s" >&2
fi

# ---- runs
KST="$OUT/$(basename "$GGUF" .gguf).kst"
[ -s "$KST" ] || "$KESTREL" convert "$GGUF" -o "$KST" >&2
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
THREADS=$(nproc)
llama() {  # llama NAME ARGS...: one llama-bench run, its pp/tg records appended
  local name="$1"; shift
  "$BENCH" -m "$GGUF" -p "$PROMPT" -n "$GEN" -r 3 -t "$THREADS" -o json "$@" 2>"$OUT/$name.err" \
    | python3 -c '
import json, sys
name, rnd = sys.argv[1], int(sys.argv[2])
for r in json.load(sys.stdin):
    kind = "prefill" if r["n_prompt"] > 0 else "decode"
    print(json.dumps({"engine": name, "round": rnd, "what": kind, "tok_s": r["avg_ts"],
                      "devices": r.get("devices"), "threads": r.get("n_threads"),
                      "llama_cpp_python": sys.argv[3]}))
' "$name" "$round" "$VERSION" >> "$RESULTS" || { tail -5 "$OUT/$name.err" >&2; exit 1; }
}
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS: kestrel ..." >&2
  "$KESTREL" bench "$KST" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --paths 1 --repeat 3 --json \
    2>/dev/null | python3 -c '
import json, sys
r, rnd = json.load(sys.stdin), int(sys.argv[1])
for what, key in (("prefill", "prefill_tok_s"), ("decode", "decode_tok_s")):
    print(json.dumps({"engine": "kestrel", "round": rnd, "what": what, "tok_s": r[key],
                      "backend": r["device"]["adapter"]}))
' "$round" >> "$RESULTS"
  echo "round $round/$ROUNDS: llama.cpp CPU ..." >&2
  llama llama.cpp-cpu -dev none -ngl 0
  if [ "$VULKAN" = 1 ]; then
    echo "round $round/$ROUNDS: llama.cpp Vulkan ..." >&2
    GGML_VK_VISIBLE_DEVICES=0 llama llama.cpp-vulkan -dev Vulkan0 -ngl 99
  fi
done

python3 - "$RESULTS" "$OUT/table.md" "$GGUF" "$PROMPT" "$GEN" "$ROUNDS" <<'PY'
import json, statistics, sys
results, out, gguf, prompt, gen, rounds = sys.argv[1:]
recs = [json.loads(l) for l in open(results) if l.strip()]
engines = []
for r in recs:
    if r["engine"] not in engines:
        engines.append(r["engine"])
def med(engine, what):
    v = [r["tok_s"] for r in recs if r["engine"] == engine and r["what"] == what]
    return statistics.median(v) if v else float("nan")
k_dec, k_pre = med("kestrel", "decode"), med("kestrel", "prefill")
lines = [f"`{gguf.rsplit('/', 1)[-1]}`, prefill {prompt} tokens, decode {gen} tokens; "
         f"medians of {rounds} interleaved rounds (tok/s).", "",
         "| engine | decode tok/s | prefill tok/s | decode vs Kestrel | prefill vs Kestrel |",
         "|---|---|---|---|---|"]
for e in engines:
    d, p = med(e, "decode"), med(e, "prefill")
    lines.append(f"| {e} | {d:.1f} | {p:.1f} | {d / k_dec:.2f}× | {p / k_pre:.2f}× |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "records: $RESULTS" >&2
