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
  PKGS=(-r benchmarks/requirements.txt)
  if [ -f pyproject.toml ]; then PKGS+=(-e '.[redis,fastapi]')
  else echo "run.sh: no pyproject.toml yet, ignite_cache rows will be skipped" >&2; fi
  "$VENV/bin/python" -m pip install -q "${PKGS[@]}"
  echo "$WANT" > "$STAMP"
fi
exec "$VENV/bin/python" -m benchmarks "$@"
