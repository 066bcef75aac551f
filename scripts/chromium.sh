#!/usr/bin/env bash
# Headless Chromium for the job-summary rendering test: Debian's `chromium` package, installed
# when missing (idempotent; a no-op where a `chromium` is on PATH).
set -euo pipefail

if command -v chromium >/dev/null; then
  echo "chromium: present ($(chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
command -v apt-get >/dev/null || { echo "chromium: error: not on PATH and no apt-get to install it" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo --non-interactive "$@"; fi; }
echo "chromium: installing Debian's chromium"
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-noto-color-emoji; then
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-noto-color-emoji
fi
