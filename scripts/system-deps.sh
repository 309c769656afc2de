#!/usr/bin/env bash
# System packages the tests and simulators need (Debian): socat for serial ptys, Chromium for the browser
# tests (driven by the PyPI playwright package; never `playwright install`), a CJK font for legible pages.
set -euo pipefail
need=()
command -v socat >/dev/null 2>&1 || need+=(socat)
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo_=(); else sudo_=(sudo); fi
echo "installing system packages: ${need[*]}"
"${sudo_[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
