# Sourced by run.sh and readme_recipes.sh: builds the gateway, starts
# gateways with an embedded broker on free ports, and stops them (and
# removes the scratch directory) when the script exits, however it exits.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# KGATE_GATEWAY=/path/to/gateway uses that binary instead of building one.
GATEWAY=${KGATE_GATEWAY:-$ROOT/.tmp/bin/gateway}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kgate-examples.XXXXXX")
GATEWAY_PIDS=()
GATEWAY_LOGS=()

fail() {
	echo "$*" >&2
	exit 1
}

_cleanup() {
	local rc=$? pid log
	for pid in "${GATEWAY_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${GATEWAY_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [[ $rc -ne 0 ]]; then
		for log in "${GATEWAY_LOGS[@]}"; do
			[[ -s $log ]] && { echo "--- last lines of $(basename "$log")"; tail -n 15 "$log"; } >&2
		done
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_gateway() {
	if [[ -z ${KGATE_GATEWAY:-} ]]; then
		make -C "$ROOT" --no-print-directory build >/dev/null
	fi
	[[ -x $GATEWAY ]] || fail "no gateway binary at $GATEWAY"
}

# start_gateway NAME [gateway flags...] starts a gateway with an embedded
# in-memory broker, all on free ports, waits until it listens, and sets
# GATEWAY_ADDR to its gRPC address and GATEWAY_HTTP to its HTTP listener's.
start_gateway() {
	local name=$1
	shift
	local log=$WORK/gateway-$name.log
	local ports=(--listen 127.0.0.1:0 --embedded-kafka 127.0.0.1:0)
	# Every fixed default port moves to a free one, so that the tests run
	# beside a `make run` gateway or each other.
	# The help is read whole first: `--help | grep -q` under pipefail
	# fails when grep's early exit kills the gateway with SIGPIPE.
	local help
	help=$("$GATEWAY" --help 2>&1) || true
	if [[ $help == *-metrics-listen* ]]; then
		ports+=(--metrics-listen 127.0.0.1:0)
	fi
	if [[ $help == *-http-listen* ]]; then
		ports+=(--http-listen 127.0.0.1:0)
	fi
	: >"$log" # exists before the background job opens it
	env -u KGATE_GATEWAY "$GATEWAY" "${ports[@]}" "$@" >"$log" 2>&1 & # KGATE_GATEWAY is this script's, not a gateway setting
	local pid=$!
	GATEWAY_PIDS+=("$pid")
	GATEWAY_LOGS+=("$log")
	GATEWAY_ADDR=
	local i
	for ((i = 0; i < 300; i++)); do
		GATEWAY_ADDR=$(sed -n 's/.*msg="kgate listening" grpc=\([^ ]*\).*/\1/p' "$log" | head -n 1)
		GATEWAY_HTTP=$(sed -n 's/.*msg="kgate listening" .* http=\([^ ]*\).*/\1/p' "$log" | head -n 1)
		[[ -n $GATEWAY_ADDR ]] && return 0
		kill -0 "$pid" 2>/dev/null || fail "gateway $name exited at start: $(tail -n 5 "$log")"
		sleep 0.1
	done
	fail "gateway $name did not log \"kgate listening\" within 30 s"
}
