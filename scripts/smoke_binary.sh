#!/usr/bin/env bash
# Builds the single binary (dist/kvq, with `bun build --compile`) and smoke-tests it the way an
# operator uses it: from another directory, with a task module outside the repository.
#
#   1. enqueue a call (first, so the burst cluster below always finds work);
#   2. run `kvq cluster --burst` in the background: it exits 0 once the queue is empty;
#   3. `kvq result --wait` prints the result;
#   4. `kvq info` shows the counts; export → import → export is byte-identical.
#
# Exits non-zero on any failure. Set KVQ_BIN to test an already built binary instead.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

fail() {
  echo "smoke_binary: FAILED: $*" >&2
  if [[ -n "${work:-}" && -f "$work/cluster.log" ]]; then
    echo "--- cluster output" >&2
    cat "$work/cluster.log" >&2
  fi
  exit 1
}

if [[ -z "${KVQ_BIN:-}" ]]; then
  echo "smoke_binary: building dist/kvq"
  if command -v bun >/dev/null && [[ "$(bun --version)" == "1.4.5" ]]; then
    (cd "$repo" && bun build --compile main.ts src/cluster/worker_main.ts --outfile dist/kvq) >/dev/null
  else
    (cd "$repo" && npx -y bun@1.4.5 build --compile main.ts src/cluster/worker_main.ts --outfile dist/kvq) >/dev/null
  fi
  KVQ_BIN="$repo/dist/kvq"
fi
[[ -x "$KVQ_BIN" ]] || fail "no executable at $KVQ_BIN"

work="$(mktemp -d)"
cluster_pid=""
cleanup() {
  if [[ -n "$cluster_pid" ]] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -KILL "$cluster_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export NO_COLOR=1 KVQ_KV="$work/data/kv.sqlite3"
unset KVQ_QUEUE KVQ_TASKS

cat > "$work/tasks.ts" <<'EOF'
// A task module outside the repository: it imports nothing from kvq.
export function add(a: number, b: number): number {
  return a + b;
}
export async function greet(name: string): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 10));
  return `hello ${name}`;
}
EOF

kvq() { timeout 60 "$KVQ_BIN" "$@"; }

kvq --version | grep -q '^kvq ' || fail "kvq --version"
kvq --help | grep -q 'monitor' || fail "kvq --help does not list monitor"

# 1. Enqueue.
enq="$(kvq enqueue add --args '[20, 22]' --json)" || fail "enqueue"
id="$(printf '%s' "$enq" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
[[ -n "$id" && "$id" != "$enq" ]] || fail "enqueue printed no id: $enq"
kvq enqueue greet --args '["edge"]' >/dev/null || fail "enqueue greet"

# 2. A burst cluster in the background.
timeout 120 "$KVQ_BIN" cluster --tasks ./tasks.ts --workers 2 --burst >"$work/cluster.log" 2>&1 &
cluster_pid=$!

# 3. The result.
result="$(kvq result "$id" --wait 60000)" || fail "result --wait (exit $?)"
[[ "$result" == "42" ]] || fail "result is '$result', expected 42"

status=0
wait "$cluster_pid" || status=$?
cluster_pid=""
[[ $status -eq 0 ]] || fail "cluster --burst exited with $status"

# 4. Info: both tasks succeeded.
info="$(kvq info --json)" || fail "info"
printf '%s' "$info" | grep -q '"succeeded":2' || fail "info does not show 2 succeeded: $info"
kvq info | grep -q '^queue default' || fail "info text"

# Backups from the binary: export → import into an empty store → export, byte for byte.
kvq export --out "$work/a.ndjson" 2>/dev/null || fail "export"
kvq import "$work/a.ndjson" --kv "$work/restored.sqlite3" >/dev/null || fail "import"
kvq export --kv "$work/restored.sqlite3" --out "$work/b.ndjson" 2>/dev/null || fail "export 2"
cmp -s "$work/a.ndjson" "$work/b.ndjson" || fail "export → import → export differs"

echo "smoke_binary: ok ($KVQ_BIN: enqueue, cluster --burst, result, info, export/import)"
