#!/usr/bin/env bash
# Installs what the browser tests need from Debian's packages, where missing: the chromium
# browser (driven by Playwright at /usr/bin/chromium; we never download a browser build) and a
# CJK font so Chinese renders in screenshots instead of boxes.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ERROR: browser tests need: ${need[*]} (Debian packages). Install them with:" >&2
  echo "       sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "==> installing ${need[*]} from Debian's packages"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
