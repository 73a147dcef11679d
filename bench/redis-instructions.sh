#!/usr/bin/env bash
# Counts the instructions redis-server executes per job, under callgrind: unlike seconds,
# the count does not move with whatever else the machine is doing, so it compares two
# versions of the Lua scripts on a noisy machine. Needs valgrind and redis-server.
#
#   bash bench/redis-instructions.sh enqueue [ROWS]   # backfill ROWS create-customer rows (50,000)
#   bash bench/redis-instructions.sh drain [ROWS]     # drain ROWS stubbed jobs, concurrency 50 (20,000)
#
# For the drain, REDIS_INSTRUCTIONS_PREFETCH=N has the worker claim up to N jobs ahead of its
# slots (`queue.prefetch`, as the drain-stub bench does with 50).
#
# Prints Redis' instructions per job, counted from when the server answers (after start-up
# and, for the drain, after loading its backlog), less those of an idle server's stop. Uses the
# release binaries (cargo build --release -p onboard-producer --features cli -p onboard-worker first), or
# those in $REDIS_INSTRUCTIONS_BIN, to compare two builds.
set -euo pipefail

mode=${1:?usage: redis-instructions.sh enqueue|drain [ROWS]}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${REDIS_INSTRUCTIONS_BIN:-$root/target/release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ONBOARD_REDIS_URL=redis://127.0.0.1:$port ONBOARD_PROFILE=sandbox ONBOARD_LOG=warn

case $mode in
  enqueue) rows=${2:-50000} ;;
  drain) rows=${2:-20000} ;;
  *) echo "unknown mode $mode (enqueue or drain)" >&2; exit 1 ;;
esac
python3 - "$work/rows.csv" "$rows" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("customer_id,country_code,phone_number\n")
    for i in range(int(sys.argv[2])):
        f.write(f"cust_{i},86,139{i:08d}\n")
EOF

# Runs redis-server under callgrind with the queue filled (drain) or empty, runs $1, and
# prints the instruction total.
counted() {
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    redis-server --port "$port" --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  local redis=$!
  until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do sleep 0.2; done
  # Counted from here: not the start-up, nor the loading of a backlog saved beforehand.
  callgrind_control -z "$redis" >/dev/null 2>&1
  local status=0
  "$@" >>"$work/run.log" 2>&1 || status=$?
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$redis" || true
  if [ "$status" != 0 ]; then
    echo "'$*' failed ($status):" >&2
    tail -5 "$work/run.log" >&2
    exit 1
  fi
  awk '/^totals:/ {print $2}' "$work/cg.out"
}

idle=$(counted true)
if [ "$mode" = enqueue ]; then
  total=$(counted "$bin/onboard-producer" backfill "$work/rows.csv" --kind create-customer)
else
  # The backlog is enqueued into an uncounted redis-server and saved; the counted one loads
  # it (before the count starts). An enqueue under callgrind can outlast the client's 5 s
  # command timeout on a slow machine.
  redis-server --port "$port" --save '' --appendonly no --dir "$work" >"$work/fill.log" 2>&1 &
  fill=$!
  until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do sleep 0.2; done
  "$bin/onboard-producer" backfill "$work/rows.csv" --kind create-customer >/dev/null
  redis-cli -p "$port" save >/dev/null
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$fill" || true
  # The worker's prefetch (`queue.prefetch`), when given: builds before it reject the setting.
  prefetch=()
  if [ -n "${REDIS_INSTRUCTIONS_PREFETCH:-}" ]; then
    prefetch=("ONBOARD_QUEUE__PREFETCH=$REDIS_INSTRUCTIONS_PREFETCH")
  fi
  drain() {
    env "${prefetch[@]}" ONBOARD_STUB_PROVIDERS=true ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER=50 \
      ONBOARD_LIMITS__IOT=0 ONBOARD_METRICS_LISTEN=127.0.0.1:0 \
      "$bin/onboard-worker" >"$work/worker.log" 2>&1 &
    local worker=$!
    until [ "$(redis-cli -p "$port" hget 'onboard:{iot}:create-customer:counts' succeeded)" = "$rows" ]; do
      sleep 0.5
    done
    kill "$worker"
    wait "$worker" || true
  }
  total=$(counted drain)
fi
echo "$mode: $rows jobs, $(( (total - idle) / rows )) redis-server instructions per job"
