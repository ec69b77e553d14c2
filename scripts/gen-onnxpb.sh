#!/usr/bin/env bash
# Usage: scripts/gen-onnxpb.sh
#
# Regenerates onnx/onnxpb/onnx.pb.go, the Go types of the ONNX protobuf
# schema, from Debian's libonnx-dev onnx.proto (ONNX 1.12, IR version 8).
# The generated file is committed, so builds never need protoc. Needs:
#   apt-get install -y protobuf-compiler libonnx-dev
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
set -euo pipefail
cd "$(dirname "$0")/.."
proto=${ONNX_PROTO:-$(dpkg -L libonnx-dev | grep '/onnx\.proto$' | head -1)}
if [ -z "$proto" ] || [ ! -f "$proto" ]; then
	echo "gen-onnxpb: onnx.proto not found (apt-get install -y libonnx-dev)" >&2
	exit 1
fi
gobin=$(go env GOPATH)/bin
PATH="$gobin:$PATH"
command -v protoc >/dev/null || { echo "gen-onnxpb: protoc missing (apt-get install -y protobuf-compiler)" >&2; exit 1; }
command -v protoc-gen-go >/dev/null || { echo "gen-onnxpb: protoc-gen-go missing (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12)" >&2; exit 1; }
protoc -I "$(dirname "$proto")" \
	--go_out=onnx/onnxpb --go_opt=paths=source_relative \
	--go_opt=Monnx.proto=github.com/heimdall-sdr/trainer/onnx/onnxpb \
	"$(basename "$proto")"
echo "gen-onnxpb: wrote onnx/onnxpb/onnx.pb.go from $proto ($(sha256sum "$proto" | cut -c1-16))" >&2
