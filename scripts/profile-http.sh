#!/usr/bin/env bash
# One server under callgrind, counting instructions only while the load
# generator runs (8 keep-alive connections, 300 B Numero deliveries with
# unique ids, 127.0.0.1 only, bounded by DURATION). Divide the program
# total by the requests it prints for instructions per request:
#   callgrind_annotate --inclusive=yes OUT
# Under valgrind `sha2` takes its software path (≈ 21 000 instructions per
# 300 B HMAC, against ≈ 390 ns with SHA-NI): compare routes, not absolutes.
#
# Usage: scripts/profile-http.sh OUT PORT DURATION_SECS COMMAND...
#   (COMMAND serves POST /webhooks/numero on 127.0.0.1:PORT)
# Env: LOADGEN (the built benches/loadgen.rs binary; required).
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,12p "$0" >&2; exit 2; }
out=$1 port=$2 duration=$3
shift 3
[ -x "${LOADGEN:-}" ] || { echo "LOADGEN=<the loadgen binary> is required" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
export NUMERO_WEBHOOK_SECRET=whsec_loadtestloadtestloadtest0123456789

rm -f "$out"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@" \
  >/dev/null 2>"$out.valgrind" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
up=
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
  sleep 0.2
done
[ -n "$up" ] || { echo "the server did not listen on $port" >&2; exit 1; }
sleep 1
callgrind_control -i on "$pid" >/dev/null 2>&1
"$LOADGEN" --url "http://127.0.0.1:$port/webhooks/numero" --scheme numero \
  --secret "$NUMERO_WEBHOOK_SECRET" --duration "$duration" --warmup 0 \
  --connections 8 --size 300 | grep '^RESULT'
callgrind_control -i off "$pid" >/dev/null 2>&1
kill "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT
callgrind_annotate "$out" | grep 'PROGRAM TOTALS'
