#!/usr/bin/env bash
# Fuzzes the live HTTP API with schemathesis (pinned, from PyPI) against its own OpenAPI
# document: a private redis-server on a free port, `onboard-producer serve` with one
# operator token, then a bounded number of examples per operation, fuzzed bodies included.
# Fails on any 5xx, or on a response that does not match the schema.
# Usage: tests/python/schemathesis.sh [MAX_EXAMPLES]   (run from .ci/run after a build)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${ONBOARD_PRODUCER_BIN:-$root/target/debug/onboard-producer}"
examples="${1:-50}"
. "$here/venv.sh"
ONBOARD_PYVENV="${ONBOARD_SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}" \
    python_with schemathesis 'schemathesis==4.32.5'
st="$(dirname "$py")/schemathesis"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits (at most 30 s) until FILE holds a line matching PATTERN.
wait_for() {
    local file="$1" pattern="$2" tries=300
    until grep -q "$pattern" "$file" 2>/dev/null; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "schemathesis.sh: timed out waiting for $pattern in $file" >&2
            cat "$work"/*.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "$work/redis.log" "Ready to accept connections"

token="$("$py" -c 'import secrets; print(secrets.token_hex(24))')"
hash="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
cat >"$work/onboard.toml" <<TOML
profile = "sandbox"
redis_url = "redis://127.0.0.1:$redis_port/"
[api]
rate_per_sec = 100000
burst = 100000
[[api.tokens]]
name = "schemathesis"
sha256 = "$hash"
kinds = ["create-customer", "bind-devices", "create-account", "register-user"]
role = "operator"
TOML

# None of the caller's ONBOARD_* variables: the file is the whole configuration.
unset_onboard=()
while IFS='=' read -r name _; do
    unset_onboard+=(-u "$name")
done < <(env | grep '^ONBOARD_' || true)
env "${unset_onboard[@]}" ONBOARD_LOG=warn "$bin" --config "$work/onboard.toml" serve \
    --listen 127.0.0.1:0 >"$work/server.out.log" 2>"$work/server.err.log" &
pids+=($!)
wait_for "$work/server.out.log" "serving the HTTP API on"
url="$(awk '/serving the HTTP API on/ {print $NF; exit}' "$work/server.out.log")"

status=0
"$st" run "$url/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance,content_type_conformance \
    --max-examples "$examples" \
    --seed 16 \
    --no-color || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log ---" >&2
    tail -50 "$work/server.err.log" >&2 || true
fi
exit "$status"
