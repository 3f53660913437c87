#!/bin/sh
# The virtualenv the Python package is built and tested in: maturin, pytest,
# pyarrow and moto's S3 server, pinned to major versions. Idempotent: a complete
# venv is left as it is.
set -eu
venv="$1"
if [ -x "$venv/bin/maturin" ] && [ -x "$venv/bin/pytest" ] && [ -x "$venv/bin/moto_server" ] \
    && "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "maturin>=1.5,<2" "pytest>=8,<10" "pyarrow>=15" "moto[server]>=5,<6"
