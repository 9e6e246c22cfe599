#!/usr/bin/env bash
# The run report in a real browser: `spar-host report` on RUN_DIR (default: the demo run), opened
# by headless Chromium (Debian's `chromium` package). Checks that the page's script ran without a
# console error and drew as many pairs and trees as the run's files hold, takes a screenshot, and
# times the load. With --large N, the same on a copy of the run whose pairs are repeated to N.
#   scripts/check-report.sh [RUN_DIR] [--large N]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-target/demo/run}
large=0
if [ "${2:-}" = "--large" ]; then large=${3:?--large needs a count}; fi
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "no chromium: apt-get install chromium" >&2; exit 1; }
cargo build --release -q
out=target/report-check
rm -rf "$out" && mkdir -p "$out"
if [ "$large" -gt 0 ]; then
    # A copy of the run with its first iteration's pairs repeated to N (new ids).
    cp -r "$run" "$out/run" && run="$out/run"
    python3 - "$run/iter-1/pairs.jsonl" "$large" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
pairs = [json.loads(l) for l in open(path) if l.strip()]
with open(path, "w") as f:
    for i in range(n):
        p = dict(pairs[i % len(pairs)]); p["id"] = f"{p['id']}-copy{i}"
        f.write(json.dumps(p) + "\n")
PY
fi
target/release/spar-host report "$run" --output "$out/report.html"
page="file://$(realpath "$out/report.html")"
flags=(--headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 --window-size=1200,2400)
started=$(date +%s.%N)
"$browser" "${flags[@]}" --dump-dom "$page" > "$out/dom.html" 2> "$out/console.log"
loaded=$(echo "$(date +%s.%N) - $started" | bc)
"$browser" "${flags[@]}" --screenshot="$out/report.png" "$page" 2>/dev/null >/dev/null
count() { cat "$@" 2>/dev/null | grep -c . || true; }
want_pairs=$(count "$run"/iter-*/pairs.jsonl)
want_trees=$(count "$run"/iter-*/trees.jsonl)
python3 - "$out/dom.html" "$out/console.log" "$want_pairs" "$want_trees" "$loaded" "$out/report.png" <<'PY'
import re, sys
dom, console, want_pairs, want_trees, loaded, shot = sys.argv[1:7]
html = open(dom).read()
errors = [l for l in open(console, errors="replace") if "CONSOLE" in l and ("Uncaught" in l or "Error" in l)]
def total(kind):
    return sum(int(n) for n in re.findall(rf'class="{kind}-count"[^>]*>(\d+)<', html))
shown_pairs = len(re.findall(r'<div class="pair">', html))
checks = {
    "page script finished": 'data-rendered="yes"' in html,
    "no console errors": not errors,
    f"pairs drawn = {want_pairs}": total("pair") == int(want_pairs),
    f"trees drawn = {want_trees}": total("tree") == int(want_trees),
    "first page of pairs rendered": shown_pairs == min(25, int(want_pairs)) or int(want_pairs) > 25 and shown_pairs >= 25,
}
for name, ok in checks.items():
    print(f"{'ok  ' if ok else 'FAIL'} {name}")
for e in errors:
    print("    ", e.strip())
print(f"loaded and rendered in {float(loaded):.2f} s (headless Chromium, whole process); screenshot {shot}")
sys.exit(0 if all(checks.values()) else 1)
PY
