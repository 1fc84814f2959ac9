#!/usr/bin/env bash
# First screen of a report (1400x900 PNG) as a reader's browser shows it: headless Debian chromium.
#   scripts/screenshot_report.sh results/h100/report/report.html docs/report_first_screen.png
# Needs /usr/bin/chromium (apt-get install -y chromium). Bad arguments: one line, exit 2.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 REPORT.html OUT.png" >&2
    exit 2
fi
html=$1
out=$2
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -f "$html" ]; then
    echo "screenshot_report: no such file: $html" >&2
    exit 2
fi
if [ ! -x "$chromium" ]; then
    echo "screenshot_report: $chromium not found (apt-get install -y chromium)" >&2
    exit 2
fi
mkdir -p "$(dirname "$out")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
url="file://$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
rm -f "$out_abs"
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size=1400,900 \
    --screenshot="$out_abs" "$url" >"$profile/chromium.log" 2>&1 || true
if [ ! -s "$out_abs" ]; then
    echo "screenshot_report: chromium wrote no PNG ($(tail -n 1 "$profile/chromium.log"))" >&2
    exit 1
fi
echo "$out_abs"
