#!/usr/bin/env bash
# End-to-end run of the Node.js and Python examples against real gateways
# (embedded broker, free ports), asserting what they print:
#
#   1. publisher: 20 messages written, each with a partition and an offset;
#   2. consumer: the 20 records consumed exactly once each, every "-retry"
#      record nacked on delivery_attempt 1 and acked when redelivered with
#      delivery_attempt 2, stream ended OK by half-close;
#   3. publisher against a gateway whose producer queue holds 2 messages
#      (queue.buffering.max.messages=2, linger.ms=50), 4 requests of 5 at a
#      time: RESOURCE_EXHAUSTED with google.rpc.RetryInfo and ErrorInfo, the
#      publisher waits the delay and resends only what kgate.v1.PublishFailure
#      says was not written, and in the end all 100 are written;
#   4. consumer of that topic: exactly 100 records with 100 distinct values,
#      so nothing written was sent twice;
#   5. (Node) tail.js over HTTP/1.1 with @connectrpc/connect-node: 20
#      records published with curl (JSON, POST /v1/topics/{topic}/messages)
#      tailed and each acked with the unary Ack; then curl reads the group's
#      lag (GET /v1/groups/{group}): 0 in every partition, 20 committed.
#
# Needs: Go (builds the gateway), curl, buf in .tmp/bin (a descriptor set
# for tail.js), node with examples/node/node_modules (npm ci), Debian's /usr/bin/python3 with python3-grpcio and
# python3-protobuf, and protoc + grpc_python_plugin (protobuf-compiler,
# protobuf-compiler-grpc). `make examples` installs them and runs this.
# EXAMPLES=node (or python) runs one language only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PYTHON=/usr/bin/python3 # Debian's: python3-grpcio imports only there
COUNT=20
PRESSURE_COUNT=100
LANGS=(${EXAMPLES:-node python})

# lang_fail STEP OUTPUT_FILE WHY: says which language and step broke, with the
# step's output, and ends the language's subshell.
lang_fail() {
	{
		echo "$LANG_NAME example failed: $1: $3"
		if [[ -s $2 ]]; then
			echo "--- output of $LANG_NAME $1 (last 25 lines):"
			tail -n 25 "$2"
		fi
	} >&2
	exit 1
}

# step NAME OUT CMD...: runs one example program (bounded by timeout) into OUT.
step() {
	local name=$1 out=$2
	shift 2
	local started=$SECONDS rc=0
	timeout 120 "$@" >"$out" 2>&1 || rc=$?
	((rc == 124)) && lang_fail "$name" "$out" "did not finish within 120 s"
	((rc == 0)) || lang_fail "$name" "$out" "exited with status $rc"
	echo "  $name ($((SECONDS - started)) s): $(grep -m1 '^SUMMARY' "$out" || echo 'no SUMMARY line')"
}

# expect_line STEP OUT REGEX WHY: OUT must have a line matching REGEX (grep -E).
expect_line() {
	grep -Eq -- "$3" "$2" || lang_fail "$1" "$2" "$4 (no line matching /$3/)"
}

# expect_count STEP OUT REGEX N WHY: exactly N lines of OUT match REGEX.
expect_count() {
	local n
	n=$(grep -Ec -- "$3" "$2" || true)
	((n == $4)) || lang_fail "$1" "$2" "$5: $n lines match /$3/, want $4"
}

# check_language: the four steps for LANG_NAME, whose programs are
# PUBLISHER=(...) and CONSUMER=(...), with the same flags in both languages.
check_language() {
	local out=$WORK/$LANG_NAME
	local topic=$LANG_NAME-orders pressure_topic=$LANG_NAME-pressure
	local retries=$((COUNT / 5)) # every 5th value ends in -retry
	echo "== $LANG_NAME"

	step publisher "$out-publisher.txt" "${PUBLISHER[@]}" --addr "$PLAIN_ADDR" --topic "$topic" \
		--count $COUNT --batch 5 --prefix "$LANG_NAME-order" --retry-every 5
	expect_line publisher "$out-publisher.txt" "^SUMMARY written=$COUNT/$COUNT " "not every message written"
	expect_count publisher "$out-publisher.txt" '^written key-[0-9]+ value=[^ ]+ partition=[0-9]+ offset=[0-9]+$' $COUNT \
		"each message must be reported written with its partition and offset"

	step consumer "$out-consumer.txt" "${CONSUMER[@]}" --addr "$PLAIN_ADDR" --topic "$topic" \
		--group "$LANG_NAME-billing" --expect $COUNT --nack-delay-ms 200 --timeout-s 30
	expect_line consumer "$out-consumer.txt" \
		"^SUMMARY records=$COUNT distinct_values=$COUNT acked=$COUNT nacked=$retries redelivered=$retries status=OK$" \
		"wrong counts of consumed, acked, nacked or redelivered records"
	expect_count consumer "$out-consumer.txt" '^nacked value=[^ ]*-retry .* delivery_attempt=1 delay=200ms$' $retries \
		"every -retry record must be nacked on its first delivery"
	expect_count consumer "$out-consumer.txt" '^acked value=[^ ]*-retry .* delivery_attempt=2 \(redelivered after nack\)$' $retries \
		"every nacked record must come back with delivery_attempt 2 and be acked"

	step "publisher under RESOURCE_EXHAUSTED" "$out-pressure.txt" "${PUBLISHER[@]}" --addr "$PRESSURE_ADDR" \
		--topic "$pressure_topic" --count $PRESSURE_COUNT --batch 5 --concurrency 4 --retry-every 0 \
		--prefix "$LANG_NAME-load" --quiet
	local s="publisher under RESOURCE_EXHAUSTED"
	expect_line "$s" "$out-pressure.txt" \
		'^RESOURCE_EXHAUSTED reason=PRODUCER_QUEUE_FULL retry_delay=[0-9]+ms \(google\.rpc\.RetryInfo\) .*: waiting [0-9]+ms, then retrying' \
		"no RESOURCE_EXHAUSTED decoded with ErrorInfo and RetryInfo, or no wait for the RetryInfo delay"
	expect_line "$s" "$out-pressure.txt" \
		'^RESOURCE_EXHAUSTED .* written=([1-9][0-9]*)/[0-9]+ \(kgate\.v1\.PublishFailure\): .* retrying only the [1-9][0-9]* not written$' \
		"no partly written batch retried from its kgate.v1.PublishFailure outcomes"
	local summary sent retried
	summary=$(grep -m1 '^SUMMARY' "$out-pressure.txt")
	[[ $summary =~ ^SUMMARY\ written=$PRESSURE_COUNT/$PRESSURE_COUNT\ requests=[0-9]+\ sent_messages=([0-9]+)\ resource_exhausted=[1-9][0-9]*\ partial=[1-9][0-9]*\ retried_messages=([0-9]+)$ ]] ||
		lang_fail "$s" "$out-pressure.txt" "unexpected summary (all $PRESSURE_COUNT written, some RESOURCE_EXHAUSTED and partial batches): $summary"
	sent=${BASH_REMATCH[1]} retried=${BASH_REMATCH[2]}
	((sent == PRESSURE_COUNT + retried)) ||
		lang_fail "$s" "$out-pressure.txt" "sent $sent messages for $PRESSURE_COUNT + $retried retries: something written was sent again"

	step "consumer of the RESOURCE_EXHAUSTED topic" "$out-pressure-consumer.txt" "${CONSUMER[@]}" \
		--addr "$PRESSURE_ADDR" --topic "$pressure_topic" --group "$LANG_NAME-audit" --expect $PRESSURE_COUNT --timeout-s 30 --quiet
	expect_line "consumer of the RESOURCE_EXHAUSTED topic" "$out-pressure-consumer.txt" \
		"^SUMMARY records=$PRESSURE_COUNT distinct_values=$PRESSURE_COUNT acked=$PRESSURE_COUNT nacked=0 redelivered=0 status=OK$" \
		"the topic must hold each of the $PRESSURE_COUNT messages exactly once"
	[[ $LANG_NAME == node ]] && check_node_tail
	return 0
}

# check_node_tail: publish with curl, tail and ack with Connect over HTTP/1.1
# (tail.js), read the group's lag with curl.
check_node_tail() {
	local out=$WORK/node-tail topic=node-tail-orders group=node-tail
	local i body
	for ((i = 0; i < COUNT; i++)); do
		body=$(printf '{"messages":[{"key":"%s","value":"%s"}]}' "$(printf 'k%d' $i | base64)" "$(printf 'tail-%d' $i | base64)")
		curl -sS --fail-with-body -X POST "http://$PLAIN_HTTP/v1/topics/$topic/messages" -H 'Content-Type: application/json' -d "$body" >>"$out-curl.txt" 2>&1 ||
			lang_fail "curl publish" "$out-curl.txt" "POST /v1/topics/$topic/messages failed"
		echo >>"$out-curl.txt"
	done
	# (protojson puts spaces after some separators, at random, so that no one depends on its exact form.)
	expect_count "curl publish" "$out-curl.txt" '^\{"results": ?\[\{"partition": ?[0-9]+, ?"offset": ?"[0-9]+", ?"timestamp": ?"[^"]+"\}\]\}$' $COUNT \
		"each curl publish must answer with its partition, offset and timestamp"
	step "tail over HTTP/1.1 (Connect)" "$out.txt" node "$ROOT/examples/node/tail.js" --url "http://$PLAIN_HTTP" --descriptors "$DESCRIPTORS" \
		--topic "$topic" --group "$group" --expect $COUNT --timeout-s 30
	expect_line "tail over HTTP/1.1 (Connect)" "$out.txt" "^SUMMARY records=$COUNT acked=$COUNT tail=opened$" "not every record tailed and acked"
	expect_count "tail over HTTP/1.1 (Connect)" "$out.txt" '^record partition=[0-9]+ offset=[0-9]+ value=tail-[0-9]+ delivery_attempt=1$' $COUNT \
		"each record must come once, on its first delivery"
	# The acks were committed: the group's lag is 0 everywhere, as curl reads it.
	local lag committed
	for ((i = 0; ; i++)); do
		curl -sS "http://$PLAIN_HTTP/v1/groups/$group" >"$out-lag.txt" 2>&1 || true
		lag=$(grep -Eo '"lag": ?"[0-9]*"' "$out-lag.txt" | grep -Evc '"lag": ?"0"' || true)
		committed=$(grep -Eo '"committedOffset": ?"[0-9]*"' "$out-lag.txt" | awk -F'"' '{ n += $4 } END { print n + 0 }' || true) # no offsets yet: poll again
		[[ $lag == 0 && $committed == "$COUNT" ]] && break
		((i < 100)) || lang_fail "curl group lag" "$out-lag.txt" "the group's lag did not reach 0 with $COUNT committed within 10 s"
		sleep 0.1
	done
	echo "  curl group lag: 0 in every partition, $COUNT committed"
}

build_gateway
start_gateway plain
PLAIN_ADDR=$GATEWAY_ADDR PLAIN_HTTP=$GATEWAY_HTTP
DESCRIPTORS=$WORK/kgate.binpb # proto/ with its imports, for tail.js
(cd "$ROOT" && "$ROOT/.tmp/bin/buf" build -o "$DESCRIPTORS") || fail "buf build (needs buf in .tmp/bin: make tools)"
start_gateway pressure --kafka-producer queue.buffering.max.messages=2 --kafka-producer linger.ms=50
PRESSURE_ADDR=$GATEWAY_ADDR
echo "gateways: $PLAIN_ADDR, and $PRESSURE_ADDR with a 2-message producer queue"

passed=0 failed=0 broken=()
for LANG_NAME in "${LANGS[@]}"; do
	case $LANG_NAME in
	node)
		PUBLISHER=(node "$ROOT/examples/node/publisher.js")
		CONSUMER=(node "$ROOT/examples/node/consumer.js")
		;;
	python)
		PUBLISHER=("$PYTHON" "$ROOT/examples/python/publisher.py")
		CONSUMER=("$PYTHON" "$ROOT/examples/python/consumer.py")
		;;
	*) fail "unknown example language $LANG_NAME (EXAMPLES=node and/or python)" ;;
	esac
	# Each language runs in a subshell of its own with errexit, so a failure
	# ends that language only and is reported with its name.
	set +e
	(
		set -e
		case $LANG_NAME in
		node)
			command -v node >/dev/null || lang_fail setup /dev/null "node is not installed"
			[[ -d $ROOT/examples/node/node_modules/@grpc/grpc-js && -d $ROOT/examples/node/node_modules/@connectrpc/connect-node ]] ||
				lang_fail setup /dev/null "examples/node/node_modules is missing: run npm ci in examples/node (make examples does)"
			;;
		python)
			"$PYTHON" -c 'import grpc, google.protobuf' 2>/dev/null ||
				lang_fail setup /dev/null "$PYTHON cannot import grpc: apt-get install python3-grpcio python3-protobuf (make examples does)"
			"$ROOT/examples/python/gen.sh" "$WORK/python-gen" >"$WORK/gen.txt" 2>&1 ||
				lang_fail "stub generation (examples/python/gen.sh)" "$WORK/gen.txt" "failed"
			export PYTHONPATH=$WORK/python-gen
			;;
		esac
		check_language
	)
	rc=$?
	set -e
	if ((rc == 0)); then
		passed=$((passed + 1))
		echo "$LANG_NAME example: ok"
	else
		failed=$((failed + 1))
		broken+=("$LANG_NAME")
	fi
done

echo "examples: $passed passed, $failed failed"
((failed == 0)) || fail "broken examples: ${broken[*]}"
