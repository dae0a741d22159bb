#!/usr/bin/env bash
# Run the benchmark suite: benchmarks/run.sh [--quick] [--only memory,file,...]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-bench"
cd "$ROOT"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
STAMP="$VENV/.bench-deps"
WANT="$(cat pyproject.toml benchmarks/requirements.txt 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[redis,fastapi]' -r benchmarks/requirements.txt
  echo "$WANT" > "$STAMP"
fi
exec "$VENV/bin/python" -m benchmarks "$@"
