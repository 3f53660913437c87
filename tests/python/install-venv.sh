#!/bin/sh
# The virtualenv the Python package is built and tested in: maturin, pytest,
# pyarrow, moto's S3 server and PyTorch (the DataLoader tests run real torch, on
# the CPU), pinned to major versions. Idempotent: a complete venv is left as it is.
# PyTorch from PyPI brings its CUDA libraries (unused here): about 5.4 GB and, on
# a fast link, about 40 s.
set -eu
venv="$1"
if [ -x "$venv/bin/maturin" ] && [ -x "$venv/bin/pytest" ] && [ -x "$venv/bin/moto_server" ] \
    && "$venv/bin/python" -c 'import pyarrow, torch' 2>/dev/null; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "maturin>=1.5,<2" "pytest>=8,<10" "pyarrow>=15" "moto[server]>=5,<6" \
    "torch>=2,<3"
