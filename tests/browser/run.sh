#!/usr/bin/env bash
# Runs the dashboard browser tests: installs Debian's Chromium and playwright-core when missing (no browser
# download), builds the binary, and drives it. Screenshots land in tests/artifacts/screenshots.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Missing: ${missing[*]}. Install them from Debian's packages (or set CHROMIUM to Chromium's path)." >&2
    exit 1
  fi
fi
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent
cargo build --locked --quiet --bin freellmapi
target_dir="${CARGO_TARGET_DIR:-../../target}"
node dashboard.mjs "$target_dir/debug/freellmapi" ../artifacts/screenshots
