#!/usr/bin/env bash
# HTTP load, server on one core and load generator on the other, 127.0.0.1
# only, bounded in time. Compares, in one run, interleaved (each round runs
# every server once, in this order: A B C A B C ...):
#   bare      benches/server.rs: an axum route whose handler takes the body
#             (`Bytes`) and answers 200
#   layer     benches/server.rs --layer: the same route behind WebhookLayer
#             (Numero, memory store, handler takes the VerifiedEvent and
#             answers the same 200); the crate's default features
#   receiver  receiver/ (the example receiver) --store memory --quiet: the example
#             receiver, inline, on the memory store, no log line per event
#   handwritten  benches/server.rs --handwritten: the layer's hand-written
#             peer (benches/handwritten.rs); not in the default list
#   receiver_before  another build of the example receiver, at the path in
#             RECEIVER_BEFORE, with the same arguments: to compare a change
#             with what it changes, side by side; not in the default list
# Every request is a 300-byte Numero JSON body with a unique id, signed,
# over keep-alive connections (benches/loadgen.rs, a hyper client).
#
# Besides requests/s, it reports the server's CPU time per request: user +
# system time of the server process (all threads) from /proc/PID/stat,
# read by the generator at the start and end of the measured window,
# divided by the requests completed in it. That is what the layer costs,
# whether or not the generator is the bottleneck.
#
# Usage: scripts/load.sh [DURATION_SECS=10] [ROUNDS=1]
# Env: CONNECTIONS (32), SIZE (300), SERVER_CPU (0), CLIENT_CPU (1),
#      SERVERS ("bare layer receiver"), RECEIVER_BEFORE (a receiver binary),
#      CARGO_TARGET_DIR (target/bench, so the shared debug target is free).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
ROUNDS=${2:-1}
CONNECTIONS=${CONNECTIONS:-32}
SIZE=${SIZE:-300}
SERVERS=${SERVERS:-bare layer receiver}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/bench}
export NUMERO_WEBHOOK_SECRET=whsec_loadtestloadtestloadtest0123456789
export NUMBEROTP_WEBHOOK_SECRET=numberotp_loadtest_0123456789

echo "building (release)..." >&2
# Two builds, so that each gets its own features: the receiver its own
# (metrics, sqlite, ed25519), the bench servers the crate's defaults.
cargo build --release --quiet -p tower-webhook-receiver --example receiver
BUILT=$(cargo bench -p tower-webhook-benches --no-run --bench loadgen --bench server --message-format=json 2>/dev/null)
bench_binary() {
  grep -o "\"executable\":\"[^\"]*/$1-[^\"]*\"" <<<"$BUILT" | tail -1 | cut -d'"' -f4
}
LOADGEN=$(bench_binary loadgen)
SERVER=$(bench_binary server)
[ -x "$LOADGEN" ] || { echo "could not build the load generator" >&2; exit 1; }
[ -x "$SERVER" ] || { echo "could not build the bench servers" >&2; exit 1; }
EXAMPLES=$CARGO_TARGET_DIR/release/examples

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT INT TERM

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}

# run NAME PORT PATH SCHEME COMMAND...:
# prints "NAME rps p50 p99 non2xx errors gen_cpu server_cpu_us server_cpu"
run() {
  local name=$1 port=$2 path=$3 scheme=$4 secret
  shift 4
  [ "$scheme" = numero ] && secret=$NUMERO_WEBHOOK_SECRET || secret=$NUMBEROTP_WEBHOOK_SECRET
  taskset -c "$SERVER_CPU" "$@" >/dev/null 2>&1 &
  SERVER_PID=$!
  wait_port "$port"
  local line
  line=$(taskset -c "$CLIENT_CPU" "$LOADGEN" --url "http://127.0.0.1:$port$path" \
    --scheme "$scheme" --secret "$secret" --duration "$DURATION" --warmup 2 \
    --connections "$CONNECTIONS" --size "$SIZE" --server-pid "$SERVER_PID" | grep '^RESULT')
  stop_server
  echo "$line" >&2
  local get
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  echo "$name $(get rps) $(get p50_us) $(get p99_us) $(get non2xx) $(get errors) $(get gen_cpu)" \
    "$(get server_cpu_us) $(get server_cpu)"
}

RECEIVER_ARGS=(--addr 127.0.0.1:39103 --store memory --quiet)

RESULTS=$(mktemp)
trap 'stop_server; rm -f "$RESULTS"' EXIT INT TERM
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round: ${DURATION}s per server, server on CPU $SERVER_CPU, generator on CPU $CLIENT_CPU" >&2
  for server in $SERVERS; do
    case $server in
      bare) run bare 39101 /webhooks/numero numero "$SERVER" --addr 127.0.0.1:39101 ;;
      layer) run layer 39102 /webhooks/numero numero "$SERVER" --addr 127.0.0.1:39102 --layer ;;
      handwritten) run handwritten 39104 /webhooks/numero numero "$SERVER" --addr 127.0.0.1:39104 --handwritten ;;
      receiver) run receiver 39103 /webhooks/numero numero "$EXAMPLES/receiver" "${RECEIVER_ARGS[@]}" ;;
      receiver_before)
        [ -x "${RECEIVER_BEFORE:-}" ] || { echo "receiver_before needs RECEIVER_BEFORE=<a receiver binary>" >&2; exit 2; }
        run receiver_before 39103 /webhooks/numero numero "$RECEIVER_BEFORE" "${RECEIVER_ARGS[@]}" ;;
      *) echo "unknown server $server" >&2; exit 2 ;;
    esac
  done >>"$RESULTS"
done

echo
echo "| round | server | requests/s | server CPU µs / request | server CPU | p50 µs | p99 µs | non-2xx | errors | generator CPU | rps / bare | CPU per request / bare |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
awk -v per="$(wc -w <<<"$SERVERS")" '
  { round = int((NR - 1) / per) + 1
    if ($1 == "bare") { bare = $2; bare_cpu = $8 }
    rps_ratio = bare ? $2 / bare : 0
    cpu_ratio = bare_cpu ? $8 / bare_cpu : 0
    printf "| %d | %s | %.0f | %.2f | %s | %s | %s | %s | %s | %s | %.3f | %.3f |\n",
      round, $1, $2, $8, $9, $3, $4, $5, $6, $7, rps_ratio, cpu_ratio }
' "$RESULTS"

# Medians over the rounds, per server, and their ratio to bare's.
echo
echo "| server | median requests/s | median server CPU µs / request | ÷ bare |"
echo "|---|---|---|---|"
for server in $SERVERS; do
  rps=$(awk -v s="$server" '$1 == s { print $2 }' "$RESULTS" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  cpu=$(awk -v s="$server" '$1 == s { print $8 }' "$RESULTS" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  echo "$server $rps $cpu"
done | awk '
  { if ($1 == "bare") bare = $3
    name[NR] = $1; rps[NR] = $2; cpu[NR] = $3 }
  END { for (i = 1; i <= NR; i++)
          printf "| %s | %.0f | %.2f | %s |\n", name[i], rps[i], cpu[i], bare ? sprintf("%.3f", cpu[i] / bare) : "-" }
'

# The targets: each server's CPU per request over the same round's bare
# route, per round and the median of those ratios.
echo
echo "| ratio (server CPU per request) | per round | median | target |"
echo "|---|---|---|---|"
for server in $SERVERS; do
  [ "$server" = bare ] && continue
  case $server in
    layer) target="≤ 1.15" ;;
    receiver | receiver_before) target="≤ 1.30" ;;
    *) target="-" ;;
  esac
  awk -v s="$server" -v per="$(wc -w <<<"$SERVERS")" -v target="$target" '
    { round = int((NR - 1) / per) + 1
      if ($1 == "bare") bare[round] = $8
      if ($1 == s) mine[round] = $8 }
    END {
      n = 0
      for (r in mine) if (bare[r] > 0) ratio[++n] = mine[r] / bare[r]
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (ratio[j] < ratio[i]) { t = ratio[i]; ratio[i] = ratio[j]; ratio[j] = t }
      rounds = ""
      for (r = 1; r in mine; r++) rounds = rounds sprintf("%s%.3f", r > 1 ? ", " : "", bare[r] > 0 ? mine[r] / bare[r] : 0)
      median = (n % 2) ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
      printf "| %s ÷ bare | %s | **%.3f** | %s |\n", s, rounds, median, target }
  ' "$RESULTS"
done
