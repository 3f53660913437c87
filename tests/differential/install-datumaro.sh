#!/bin/sh
# Installs Datumaro (pinned in requirements.txt beside this script) into a virtualenv
# for tests/it/differential.rs: `tests/differential/install-datumaro.sh [VENV]`, by default
# target/datumaro-venv. Does nothing when VENV already holds these exact pins.
#
# The pins are Datumaro's own dependencies as pip resolves them, less pyarrow (156 MB),
# which Datumaro's importers never load; so they are installed with --no-deps. Needs
# python3 (3.10 to 3.14, with venv) and PyPI; about 420 MB installed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-$here/../../target/datumaro-venv}
req=$here/requirements.txt
if [ -f "$venv/requirements.txt" ] && cmp -s "$req" "$venv/requirements.txt"; then
    exit 0
fi
python=$(command -v python3 || command -v python || true)
if [ -z "$python" ]; then
    echo "install-datumaro.sh: python3 is not installed (needed for the Datumaro differential tests)" >&2
    exit 1
fi
# Built beside the target and renamed into place, so a failed or interrupted
# install never leaves a venv that looks complete.
tmp=$venv.tmp.$$
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$(dirname "$venv")"
if ! "$python" -m venv "$tmp"; then
    echo "install-datumaro.sh: '$python -m venv' failed (install python3-venv)" >&2
    exit 1
fi
if ! "$tmp/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req"; then
    echo "install-datumaro.sh: pip install -r $req failed (PyPI unreachable, or no wheels for $("$python" --version 2>&1))" >&2
    exit 1
fi
if ! "$tmp/bin/python" -c "import datumaro.components.dataset, datumaro.components.comparator"; then
    echo "install-datumaro.sh: Datumaro was installed but does not import" >&2
    exit 1
fi
cp "$req" "$tmp/requirements.txt"
rm -rf "$venv"
mv "$tmp" "$venv"
trap - EXIT
