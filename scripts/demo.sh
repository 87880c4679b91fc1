#!/usr/bin/env bash
# The trained demo: SmolLM2-135M-Instruct with the committed reasoning adapters, a switcher and a
# verifier trained here by `kestrel train-head`, and every configuration of the paper's table
# measured by `kestrel eval` on the test split. Writes demo/RESULTS.md (or $RUN/RESULTS.md with
# --quick) and prints its total wall time.
#
#   scripts/demo.sh [--quick] [--run DIR] [--keep]
#
#   --quick   the same pipeline on 20 test problems (and small head sets): a few minutes; CI runs
#             it and checks the outputs' schema and counts (demo/report.py --check), no accuracy.
#   --run DIR where models, heads and records go (default demo/run, or demo/run-quick); an existing
#             DIR is resumed (`kestrel eval --resume`; heads and conversions are kept) unless --fresh.
#   --fresh   start DIR over.
#
# Needs: scripts/setup.sh done (Vulkan driver, the GGUF in the asset cache), python3 (standard
# library only here), and a kestrel binary: $KESTREL, else target/release/kestrel (built if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
RUN=""
FRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --run) RUN="$2"; shift ;;
    --fresh) FRESH=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

T_START=$(date +%s)
ASSETS="${KESTREL_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/kestrel/assets}"
GGUF="$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -s "$GGUF" ] || { echo "demo.sh: $GGUF missing; run scripts/setup.sh" >&2; exit 1; }
if [ -z "${KESTREL:-}" ]; then
  KESTREL=target/release/kestrel
  [ -x "$KESTREL" ] || cargo build --release -p kestrel-tools
fi
for sub in eval train-head; do
  "$KESTREL" "$sub" --help >/dev/null 2>&1 || { echo "demo.sh: $KESTREL has no '$sub'" >&2; exit 1; }
done

if [ "$QUICK" = 1 ]; then
  N_TEST=20; N_MIX=10; N_SW=20; N_VER=8; N_BENCH="--prompt-tokens 32 --gen-tokens 4 --repeat 1 --lora-rounds 2"
  RUN="${RUN:-demo/run-quick}"; RESULTS="$RUN/RESULTS.md"
else
  N_TEST=300; N_MIX=93; N_SW=98; N_VER=64; N_BENCH="--prompt-tokens 48 --gen-tokens 16 --repeat 2 --lora-rounds 10"
  RUN="${RUN:-demo/run}"; RESULTS=demo/RESULTS.md
fi
PATHS=8
TEMP=0.7
MAXTOK=112        # longest reference trace: 5 operands, restated, every step checked: ~95 tokens
CHAT_MAXTOK=48    # chat mode's answer to an arithmetic question; the last number in it is graded
[ "$FRESH" = 1 ] && rm -rf "$RUN"
mkdir -p "$RUN"
declare -A STAGE

stage() {  # stage NAME COMMAND...: run, time, log
  local name="$1"; shift
  local t0; t0=$(date +%s)
  echo "== $name" >&2
  "$@"
  STAGE[$name]=$(( $(date +%s) - t0 ))
  echo "   $name: ${STAGE[$name]} s" >&2
}

# ---- data (demo/tasks.py; the splits are disjoint by construction)
python3 demo/tasks.py --split test --seed 0 --n "$N_TEST" --no-target --out "$RUN/test.jsonl"
python3 demo/tasks.py --split train --seed 1 --n "$N_VER" --no-target --out "$RUN/verifier_train.jsonl"
python3 demo/tasks.py --split train --seed 2 --n "$N_SW" --no-target --out "$RUN/sw_tasks.jsonl"
python3 demo/tasks.py --chat train --out "$RUN/sw_chat.jsonl"
head -n "$N_SW" "$RUN/sw_chat.jsonl" | cat - "$RUN/sw_tasks.jsonl" > "$RUN/switcher_train.jsonl"
# The held-out mix: test chat prompts and test-split problems, interleaved 50/50.
python3 demo/tasks.py --chat test --out "$RUN/mix_chat.jsonl"
python3 - "$RUN" "$N_MIX" <<'PY'
import json, sys
run, n = sys.argv[1], int(sys.argv[2])
chat = [l for l in open(f"{run}/mix_chat.jsonl")][:n]
task = [l for l in open(f"{run}/test.jsonl")][:n]
with open(f"{run}/mix_tasks.jsonl", "w") as f:
    for c, t in zip(chat, task):
        f.write(c); f.write(t)
PY

# ---- convert the model and the committed adapters
kst() { [ -s "$2" ] || "$KESTREL" convert "$1" "${@:3}" -o "$2" >&2; }
t0=$(date +%s)
kst "$GGUF" "$RUN/smollm2.kst"
M="$RUN/smollm2.kst"
for a in reasoning reasoning-standard concise; do
  kst "demo/adapters/$a" "$RUN/$a.kst" --base "$M"
done
STAGE[convert]=$(( $(date +%s) - t0 ))

# ---- heads
head_fit() {  # head_fit NAME ARGS...: train-head, its summary kept in train_NAME.log
  local name="$1"; shift
  "$KESTREL" train-head "$M" --kind "$name" "$@" -o "$RUN/$name.kst.part" > "$RUN/train_$name.log"
  cat "$RUN/train_$name.log" >&2
  mv "$RUN/$name.kst.part" "$RUN/$name.kst"
}
[ -s "$RUN/switcher.kst" ] || stage train-switcher head_fit switcher --data "$RUN/switcher_train.jsonl"
[ -s "$RUN/verifier.kst" ] || stage train-verifier head_fit verifier --adapter "$RUN/reasoning.kst" \
  --tasks "$RUN/verifier_train.jsonl" --paths $PATHS --temperature $TEMP --max-tokens $MAXTOK

# ---- evals: one records file per adapter / task set (see demo/report.py for what each serves)
ev() {  # ev NAME ARGS...
  local name="$1"; shift
  stage "eval-$name" "$KESTREL" eval "$M" --out "$RUN/$name.jsonl" --resume "$@" > "$RUN/$name.txt"
}
ev chat  --tasks "$RUN/test.jsonl" --mode chat --paths 1 --select first --max-tokens $CHAT_MAXTOK
ev main  --tasks "$RUN/test.jsonl" --adapter "$RUN/reasoning.kst" --mode reasoning --paths 1 --select first \
         --max-tokens $MAXTOK
ev standard --tasks "$RUN/test.jsonl" --adapter "$RUN/reasoning-standard.kst" --mode reasoning --paths 1 \
         --select first --max-tokens $MAXTOK
ev concise --tasks "$RUN/test.jsonl" --adapter "$RUN/concise.kst" --mode reasoning --paths 1 --select first \
         --max-tokens $MAXTOK
ev paths --tasks "$RUN/test.jsonl" --adapter "$RUN/reasoning.kst" --verifier "$RUN/verifier.kst" --mode reasoning \
         --paths $PATHS --temperature $TEMP --seed 1 --select first,vote,best,weighted --max-tokens $MAXTOK
# Budget forcing at 25/50/75/100% of the first adapter's median natural thinking length.
BUDGETS=$(python3 - "$RUN/main.jsonl" <<'PY'
import json, statistics, sys
t = [json.loads(l)["paths"][0]["thinking_tokens"] for l in open(sys.argv[1]) if l.strip()]
m = statistics.median(t)
print(",".join(str(max(1, round(f * m))) for f in (0.25, 0.5, 0.75, 1.0)))
PY
)
ev budget --tasks "$RUN/test.jsonl" --adapter "$RUN/reasoning.kst" --mode reasoning --paths 1 --select first \
         --think-budget "$BUDGETS" --max-tokens $MAXTOK
ev mix   --tasks "$RUN/mix_tasks.jsonl" --adapter "$RUN/reasoning.kst" --switcher "$RUN/switcher.kst" \
         --mode auto,reasoning --paths 1 --select first --max-tokens $MAXTOK

# ---- latency: the engine's own step ratios and reasoning TTFT after a chat turn
bench() {
  # shellcheck disable=SC2086  # N_BENCH is a list of flags
  "$KESTREL" bench "$M" --adapter "$RUN/reasoning.kst" --paths 1,$PATHS $N_BENCH --json > "$RUN/bench.json.part"
  mv "$RUN/bench.json.part" "$RUN/bench.json"
}
[ -s "$RUN/bench.json" ] || stage bench bench

# ---- report
N_MIXALL=$(wc -l < "$RUN/mix_tasks.jsonl")
python3 - "$RUN" "$QUICK" "$N_TEST" "$N_MIXALL" "$PATHS" "$TEMP" "$BUDGETS" "$T_START" "$("$KESTREL" --version 2>/dev/null || echo kestrel)" <<PY
import json, statistics, sys, time
run, quick, n, nmix, paths, temp, budgets, t0, version = sys.argv[1:]
n, nmix, paths = int(n), int(nmix), int(paths)
budgets = [int(b) for b in budgets.split(",")]
t = [json.loads(l)["paths"][0]["thinking_tokens"] for l in open(f"{run}/main.jsonl") if l.strip()]
stages = {$(for k in "${!STAGE[@]}"; do printf '"%s": %s, ' "$k" "${STAGE[$k]}"; done)}
device = "?"
try:
    device = json.load(open(f"{run}/bench.json"))["device"]["adapter"]
except Exception:
    pass
meta = {
    "quick": quick == "1", "n_test": n, "paths": paths, "temperature": float(temp),
    "budget_fractions": [0.25, 0.5, 0.75, 1.0], "budgets": budgets, "median_thinking": statistics.median(t),
    "evals": {"chat": n, "main": n, "standard": n, "concise": n, "paths": 4 * n, "budget": 4 * n,
              "mix": 2 * nmix},
    "stages": stages, "total_s": time.time() - float(t0), "device": device, "kestrel": version,
    "date": time.strftime("%Y-%m-%d"),
}
json.dump(meta, open(f"{run}/meta.json", "w"), indent=1)
PY
if [ "$QUICK" = 1 ]; then
  python3 demo/report.py "$RUN" --check --out "$RESULTS"
else
  python3 demo/report.py "$RUN" --out "$RESULTS"
fi
echo "demo.sh: total wall time $(( $(date +%s) - T_START )) s; results in $RESULTS"
