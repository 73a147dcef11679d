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
. "$here/venv.sh"
python_with tencentcloud.common.common_client tencentcloud-sdk-python-common
exec "$py" "$here/tc_sdk_check.py" "$1"
