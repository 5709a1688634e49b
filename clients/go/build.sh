#!/bin/sh
# Builds the Go commands (example-worker, conformance-worker, enqueue) into clients/go/bin, offline:
# go.mod replaces every module by Debian's sources under /usr/share/gocode/src (README.md), so
#   apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev \
#     golang-github-golang-protobuf-1-5-dev golang-google-genproto-dev
# is all it needs. GOPROXY=off: nothing is downloaded, and a missing module is an error.
# Usage: clients/go/build.sh [output folder]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/bin}" && cd "${1:-$here/bin}" && pwd)
cd "$here"
export GO111MODULE=on GOPROXY=off GOFLAGS=-mod=readonly
go build -o "$out/" ./cmd/...
echo "built example-worker, conformance-worker, enqueue in $out"
