#!/usr/bin/env bash
# Runs http_client.py (the HTTP API from Python with requests).
# Usage: tests/python/http_run.sh API_URL SANDBOX_URL APP_TOKEN OPS_TOKEN SLOW_TOKEN \
#        HOOK_TOKEN HOOK_PORT HOOK_SECRET
# Installs requests into the venv of venv.sh on first use (needs PyPI access once).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/venv.sh"
python_with requests 'requests==2.32.3'
exec "$py" "$here/http_client.py" "$@"
