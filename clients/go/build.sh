#!/bin/sh
# Builds the Go commands (example-worker, conformance-worker, enqueue) into clients/go/bin, offline,
# against Debian's Go packages in GOPATH mode:
#   apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev \
#     golang-github-golang-protobuf-1-5-dev
# The code's import path is baton/clients/go/...; a GOPATH of our own (clients/go/.gopath, ignored)
# links that path to this folder, and /usr/share/gocode provides grpc and protobuf.
# Usage: clients/go/build.sh [output folder]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin}
gopath=$here/.gopath
mkdir -p "$gopath/src/baton/clients" "$out"
ln -sfn "$here" "$gopath/src/baton/clients/go"
export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS=
for cmd in example-worker conformance-worker enqueue; do
  go build -o "$out/$cmd" "baton/clients/go/cmd/$cmd"
done
echo "built $(cd "$out" && echo example-worker conformance-worker enqueue) in $out"
