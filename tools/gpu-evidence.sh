#!/usr/bin/env bash
# GPU evidence in one prepared run (issue 23): see tools/gpu_evidence.py for the steps.
#
#   tools/gpu-evidence.sh --fetch-wheels      # where pip reaches PyPI: wheels for a bare GPU host
#   tools/gpu-evidence.sh OUTDIR --dry-run    # here: the GPU plan and a tiny CPU pass
#   tools/gpu-evidence.sh OUTDIR              # on the GPU host (installs .whl/*.whl if present)
#   tools/gpu-evidence.sh --collect OUTDIR    # back home: file the GPU results under results/
#
# The GPU host is expected to have python3 with torch (CUDA), triton, transformers, scipy,
# numpy, pyyaml, rich, networkx, matplotlib, tokenizers and pytest; what else the project
# needs (pydantic and its parts) travels as wheels in .whl/, made by --fetch-wheels.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python3}

if [ "${1:-}" = "--fetch-wheels" ]; then
    pyver=${GPU_PYTHON_VERSION:-3.12}
    mkdir -p .whl
    # the versions this checkout is tested with, for CPython $pyver on x86-64 Linux
    pins=$("$py" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in
      ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions")))
PY
)
    for spec in $pins; do
        "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d .whl "$spec"
    done
    ls -l .whl
    exit 0
fi

if [ $# -lt 1 ]; then
    echo "usage: tools/gpu-evidence.sh OUTDIR [--dry-run] | --collect OUTDIR | --fetch-wheels" >&2
    exit 2
fi

if compgen -G ".whl/*.whl" >/dev/null; then
    site=${TMPDIR:-/tmp}/gpu-evidence-site
    echo "installing $(ls .whl/*.whl | wc -l) carried wheel(s) into $site"
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi

# one line naming what is missing, before minutes are spent
"$py" - <<'PY'
import importlib.util, sys
need = ("torch", "triton", "numpy", "scipy", "yaml", "pydantic", "rich", "networkx",
        "matplotlib", "tokenizers", "pytest", "transformers")
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"error: python cannot import {', '.join(missing)}: install them, or carry wheels "
             "in .whl/ (tools/gpu-evidence.sh --fetch-wheels)")
PY
exec "$py" tools/gpu_evidence.py "$@"
