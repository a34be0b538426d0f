#!/usr/bin/env bash
# Generates Go code beside every .proto under api/proto, offline: Debian's protoc
# plus protoc-gen-go and protoc-gen-go-grpc at the versions pinned in go.mod.
# With an argument, writes into that directory instead (used by proto-check).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-api/proto}
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
mapfile -t protos < <(cd api/proto && find aura -name '*.proto' | sort)
protoc -I api/proto \
  --plugin=protoc-gen-go="$(go tool -n protoc-gen-go)" \
  --plugin=protoc-gen-go-grpc="$(go tool -n protoc-gen-go-grpc)" \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  "${protos[@]}"
