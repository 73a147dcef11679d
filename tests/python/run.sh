#!/usr/bin/env bash
# Runs tc_sdk_check.py (Tencent's official Python SDK against onboard-sandbox).
# Usage: tests/python/run.sh SANDBOX_URL
# Creates a venv under <workspace>/target/pyvenv on first use and installs
# tencentcloud-sdk-python-common into it (needs PyPI access once).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 SANDBOX_URL" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${ONBOARD_PYVENV:-$root/target/pyvenv}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import tencentcloud.common.common_client' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check tencentcloud-sdk-python-common
fi
exec "$venv/bin/python" "$here/tc_sdk_check.py" "$1"
