#!/usr/bin/env bash
# Runs the grpcurl and curl recipes of README.md, as written there, against
# a real gateway (started with --allow-anonymous-admin, as the README says
# for the Admin calls that change something), so that they cannot rot. It
# extracts every command of the ```sh blocks that mention curl or grpcurl
# (joining backslash continuations), replaces localhost:8080 with the test
# gateway's gRPC address and localhost:8081 with its HTTP listener's and, in
# the Subscribe tail, `cat` (stdin kept open until Ctrl-C) with `sleep`
# (stdin closed after TAIL_SECONDS, 8 by default, which ends the stream; a
# recipe's shorter sleep is stretched to it as well), then runs each from
# the repository root and checks its output (PeekDeadLetters is run again
# for up to 10 s until the poison consumer's dead letter is written):
#
#   list                  names kgate.v1.Publisher, Subscriber, Admin, health
#   describe X            describes X's RPCs, with the proto's comments
#   .../Publish           results with partition, offset and timestamp
#   .../Health/Check      SERVING
#   .../Subscribe, auto_ack  the record the Publish recipe wrote, at its offset
#   Admin/DescribeGateway its budget and health SERVING
#   Admin/ListTopics      lists orders; DescribeTopic: its latest offsets;
#   Admin/ListGroups      lists the tail's group; DescribeGroup: its lag;
#   Admin/PeekDeadLetters a dead letter with its origin topic; Redrive...:
#                         one redriven with where its copy landed;
#   Admin/ResetGroupOffsets  the new offsets
#   curl POST .../messages   results with an offset; GET /v1/topics/X: the
#                         latest offsets; GET /v1/groups/X: the lag; a
#                         Connect call: its answer; the typo: HTTP 400 and why
#
# A recipe of another kind must merely succeed; a kind above missing from the
# README fails the run. Needs grpcurl in .tmp/bin (make tools) and curl.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

README=${README_FILE:-$ROOT/README.md} # README_FILE: check another copy
TAIL_SECONDS=${TAIL_SECONDS:-8} # how long a Subscribe recipe's stream stays open

[[ -x $ROOT/.tmp/bin/grpcurl ]] || fail "readme recipes: no grpcurl in .tmp/bin: run make tools"

# One line per command of the ```sh blocks that mention curl (grpcurl
# included), continuations joined.
mapfile -t COMMANDS < <(awk '
	/^```sh[[:space:]]*$/ { inblock = 1; n = 0; grpc = 0; cont = 0; next }
	inblock && /^```/ {
		inblock = 0
		if (grpc) for (i = 1; i <= n; i++) print cmds[i]
		next
	}
	inblock {
		line = $0
		if (line ~ /curl/) grpc = 1
		if (cont) cmds[n] = cmds[n] " " line
		else if (line ~ /[^[:space:]]/) cmds[++n] = line
		cont = (line ~ /\\[[:space:]]*$/)
		if (cont) sub(/\\[[:space:]]*$/, "", cmds[n])
	}' "$README")
((${#COMMANDS[@]} > 0)) || fail "readme recipes: found no grpcurl commands in README.md"
command -v curl >/dev/null || fail "readme recipes: curl is not installed"

build_gateway
start_gateway readme --allow-anonymous-admin
echo "gateway: $GATEWAY_ADDR, HTTP $GATEWAY_HTTP"
[[ -n $GATEWAY_HTTP ]] || fail "readme recipes: the gateway logs no HTTP listener address"
# The recipes assume a running gateway: wait until its health says so.
for ((i = 0; ; i++)); do
	"$ROOT/.tmp/bin/grpcurl" -plaintext "$GATEWAY_ADDR" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"' && break
	((i < 100)) || fail "readme recipes: the gateway did not report SERVING within 10 s"
	sleep 0.1
done

cd "$ROOT" # the recipes run from the repository root (export PATH=$PWD/.tmp/bin:...)
passed=0
declare -A seen=()
published_value='' published_offset='' published_topic=''

recipe_fail() { # WHY COMMAND OUTPUT
	printf 'README recipe failed: %s\n  command: %s\n--- output:\n%s\n' "$1" "$2" "$3" >&2
	exit 1
}

for cmd in "${COMMANDS[@]}"; do
	[[ $cmd =~ ^[[:space:]]*# ]] && continue # a comment line of the block
	if [[ $cmd == export\ * ]]; then
		eval "$cmd"
		continue
	fi
	[[ $cmd == *localhost:8080* || $cmd == *localhost:8081* ]] ||
		recipe_fail "it does not talk to localhost:8080 (gRPC) or localhost:8081 (HTTP), so the test cannot point it at its gateway" "$cmd" ""
	run=${cmd//localhost:8080/$GATEWAY_ADDR}
	run=${run//localhost:8081/$GATEWAY_HTTP}
	if [[ $run == *Subscriber/Subscribe* ]]; then
		[[ $run == *'; cat; }'* || $run =~ \;\ sleep\ [0-9]+\;\ \} ]] ||
			recipe_fail "the Subscribe recipe no longer keeps stdin open with '{ echo ...; cat; }' (or '; sleep N; }')" "$cmd" ""
		run=${run//'; cat; }'/"; sleep $TAIL_SECONDS; }"}
		# A recipe's own short sleep gets the same room on a slow machine.
		[[ $run =~ \;\ sleep\ ([0-9]+)\;\ \} ]] && ((BASH_REMATCH[1] < TAIL_SECONDS)) &&
			run=${run//"; sleep ${BASH_REMATCH[1]}; }"/"; sleep $TAIL_SECONDS; }"}
	fi
	echo "\$ $run"
	rc=0
	out=$(timeout 60 bash -c "$run" 2>&1) || rc=$?
	# The dead letter is written in the background after the poison
	# consumer's deadline: peek again until it is there (or 10 s passed).
	if [[ $run == *Admin/PeekDeadLetters* ]]; then
		for ((try = 0; try < 20; try++)); do
			((rc == 0)) && grep -q '"reason": "not acked after 1 delivery attempts' <<<"$out" && break
			sleep 0.5
			rc=0
			out=$(timeout 60 bash -c "$run" 2>&1) || rc=$?
		done
	fi
	((rc == 0)) || recipe_fail "exited with status $rc" "$run" "$out"

	case $run in
	*" list "* | *" list")
		seen[list]=1
		for svc in kgate.v1.Publisher kgate.v1.Subscriber kgate.v1.Admin grpc.health.v1.Health; do
			grep -qx "$svc" <<<"$out" || recipe_fail "list does not show $svc" "$run" "$out"
		done
		;;
	*" describe "*)
		seen[describe]=1
		grep -q 'rpc [A-Za-z]* (' <<<"$out" || recipe_fail "describe shows no RPC" "$run" "$out"
		grep -q '^ *// .*Status codes' <<<"$out" || recipe_fail "describe shows none of the proto's comments (status codes)" "$run" "$out"
		;;
	*Publisher/Publish*)
		seen[publish]=1
		grep -q '"results": \[' <<<"$out" || recipe_fail "no results" "$run" "$out"
		for field in partition offset timestamp; do
			grep -q "\"$field\": " <<<"$out" || recipe_fail "the result has no $field" "$run" "$out"
		done
		published_offset=$(sed -n 's/.*"offset": "\([0-9]*\)".*/\1/p' <<<"$out" | head -n 1)
		published_value=$(sed -n 's/.*"value":"\([^"]*\)".*/\1/p' <<<"$run" | head -n 1)
		published_topic=$(sed -n 's/.*"topic":"\([^"]*\)".*/\1/p' <<<"$run" | head -n 1)
		;;
	*Health/Check*)
		seen[health]=1
		grep -q '"status": "SERVING"' <<<"$out" || recipe_fail "not SERVING" "$run" "$out"
		;;
	*Subscriber/Subscribe*dead_letter_topic* | *dead_letter_topic*Subscriber/Subscribe*)
		seen[poison]=1 # a consumer that never acks: its record goes to the dead-letter topic
		grep -q '"message"' <<<"$out" || recipe_fail "the consumer that never acks got no record" "$run" "$out"
		;;
	*Subscriber/Subscribe*)
		seen[tail]=1
		[[ -n $published_value ]] || recipe_fail "the tail runs before any Publish recipe, so it has nothing to show" "$run" "$out"
		grep -q '"assignment"' <<<"$out" || recipe_fail "no partition assignment" "$run" "$out"
		# The published record: its topic, value and offset (one JSON object per message).
		awk -v t="\"topic\": \"$published_topic\"" -v v="\"value\": \"$published_value\"" \
			-v o="\"offset\": \"$published_offset\"" '
			/^{/ { obj = "" } { obj = obj $0 "\n" }
			/^}/ && index(obj, t) && index(obj, v) && index(obj, o) { found = 1 }
			END { exit !found }' <<<"$out" ||
			recipe_fail "the tail does not show the published record (topic $published_topic, offset $published_offset, value $published_value)" "$run" "$out"
		;;
	curl\ *"HTTP %{http_code}"*)
		seen[curl-error]=1
		grep -q 'HTTP 400$' <<<"$out" && grep -q '"message"' <<<"$out" || recipe_fail "the typo is not answered 400 with a message" "$run" "$out"
		;;
	curl\ *"/messages"*)
		seen[curl-publish]=1
		grep -Eq '"offset": ?"[0-9]+"' <<<"$out" || recipe_fail "the curl publish shows no offset" "$run" "$out"
		;;
	curl\ *"/v1/topics/"*)
		seen[curl-topic]=1
		grep -Eq '"latestOffset": ?"[1-9]' <<<"$out" || recipe_fail "GET /v1/topics/... shows no latest offset" "$run" "$out"
		;;
	curl\ *"/v1/groups/"*)
		seen[curl-lag]=1
		grep -Eq '"lag": ?"[0-9]+"' <<<"$out" || recipe_fail "GET /v1/groups/... shows no lag" "$run" "$out"
		;;
	curl\ *"/kgate.v1."*)
		seen[curl-connect]=1
		grep -Eq '^\{"' <<<"$out" && ! grep -q '"code"' <<<"$out" || recipe_fail "the Connect call did not answer a message" "$run" "$out"
		;;
	*Admin/DescribeGateway*)
		seen[admin-gateway]=1
		grep -q '"inflightLimitBytes": "[1-9]' <<<"$out" && grep -q '"status": "SERVING"' <<<"$out" ||
			recipe_fail "DescribeGateway shows no budget or health" "$run" "$out"
		;;
	*Admin/ListTopics*)
		seen[admin-list-topics]=1
		grep -q '"topic": "orders"' <<<"$out" || recipe_fail "ListTopics does not list orders" "$run" "$out"
		;;
	*Admin/DescribeTopic*)
		seen[admin-describe-topic]=1
		grep -q '"latestOffset": "[1-9]' <<<"$out" || recipe_fail "DescribeTopic shows no partition with records" "$run" "$out"
		;;
	*Admin/ListGroups*)
		seen[admin-list-groups]=1
		grep -q '"group": "tail"' <<<"$out" || recipe_fail "ListGroups does not list the tail's group" "$run" "$out"
		;;
	*Admin/DescribeGroup*)
		seen[admin-describe-group]=1
		grep -q '"lag": "' <<<"$out" || recipe_fail "DescribeGroup shows no lag" "$run" "$out"
		;;
	*Admin/PeekDeadLetters*)
		seen[admin-peek]=1
		grep -q '"origin": {' <<<"$out" && grep -q '"reason": "not acked after 1 delivery attempts' <<<"$out" ||
			recipe_fail "PeekDeadLetters shows no dead letter with its origin and reason" "$run" "$out"
		;;
	*Admin/RedriveDeadLetters*)
		seen[admin-redrive]=1
		grep -q '"deadLetterOffset"' <<<"$out" && grep -q '"result": {' <<<"$out" ||
			recipe_fail "RedriveDeadLetters redrove nothing" "$run" "$out"
		;;
	*Admin/ResetGroupOffsets*)
		seen[admin-reset]=1
		grep -q '"newOffset"' <<<"$out" || recipe_fail "ResetGroupOffsets moved no partition" "$run" "$out"
		;;
	esac
	echo "  ok"
	passed=$((passed + 1))
done

for kind in list describe publish health tail poison admin-gateway admin-list-topics admin-describe-topic admin-list-groups admin-describe-group \
	admin-peek admin-redrive admin-reset curl-publish curl-topic curl-lag curl-connect curl-error; do
	[[ -n ${seen[$kind]:-} ]] || fail "README recipe failed: README.md has no grpcurl $kind recipe any more (or this test no longer recognises it)"
done
echo "recipes: $passed passed, 0 failed"
