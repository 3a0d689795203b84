#!/usr/bin/env bash
# Generates the Python modules the examples import into the directory $1:
# kgate.v1 (messages and gRPC stubs) and google.api's HTTP annotations, which
# kgate's protos import, from ../../proto, and google.rpc.Status, RetryInfo
# and ErrorInfo from ../googleapis. Then:
#   PYTHONPATH=$1 /usr/bin/python3 publisher.py ...
#
# Debian: protoc comes from protobuf-compiler (3.21), google/protobuf/*.proto
# from libprotobuf-dev (/usr/include), the gRPC plugin from
# protobuf-compiler-grpc (grpc_python_plugin, the same gRPC release as
# python3-grpcio). Not `python3 -m grpc_tools.protoc`: Debian's
# python3-grpc-tools bundles libprotoc 3.5.1, which rejects proto3 `optional`
# (kgate.v1.Message.partition).
set -euo pipefail
out=${1:?usage: gen.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
plugin=$(command -v grpc_python_plugin) || { echo "gen.sh: grpc_python_plugin not found: apt-get install protobuf-compiler-grpc" >&2; exit 1; }
command -v protoc >/dev/null || { echo "gen.sh: protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
mkdir -p "$out"
protoc -I "$here/../../proto" --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$plugin" kgate/v1/publisher.proto kgate/v1/subscriber.proto kgate/v1/admin.proto
protoc -I "$here/../../proto" --python_out="$out" google/api/annotations.proto google/api/http.proto
protoc -I "$here/../googleapis" --python_out="$out" google/rpc/status.proto google/rpc/error_details.proto
