// The Baton Go client: the worker library (worker/), the producer client (client/), the generated
// stubs (gen/) and three commands (cmd/). README.md says how to build and use it.
//
// It builds offline against Debian 12's Go packages (golang-google-grpc-dev 1.33.3,
// golang-google-protobuf-dev 1.28.1, golang-github-golang-protobuf-1-5-dev 1.5.2): every module of
// the build is replaced by its sources under /usr/share/gocode/src, and the modules that grpc's and
// its dependencies' go.mod files require but no package of this build imports are replaced by empty
// stub modules under stubs/ (a go.mod each). Build with GOPROXY=off; nothing is downloaded, and
// go.sum is not needed (local replacements carry no checksums). With network access and a newer Go,
// drop the replace directives and run `go mod tidy` instead.
module baton/clients/go

go 1.19

require (
	github.com/golang/protobuf v1.5.2
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)

require (
	golang.org/x/net v0.3.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.7.0 // indirect
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013 // indirect
)

// Debian's sources.
replace (
	github.com/golang/protobuf => /usr/share/gocode/src/github.com/golang/protobuf
	github.com/google/go-cmp => /usr/share/gocode/src/github.com/google/go-cmp
	golang.org/x/net => /usr/share/gocode/src/golang.org/x/net
	golang.org/x/oauth2 => /usr/share/gocode/src/golang.org/x/oauth2
	golang.org/x/sys => /usr/share/gocode/src/golang.org/x/sys
	golang.org/x/text => /usr/share/gocode/src/golang.org/x/text
	google.golang.org/genproto => /usr/share/gocode/src/google.golang.org/genproto
	google.golang.org/grpc => /usr/share/gocode/src/google.golang.org/grpc
	google.golang.org/protobuf => /usr/share/gocode/src/google.golang.org/protobuf
)

// Required by the go.mod files above, imported by no package of this build.
replace (
	cloud.google.com/go/compute/metadata => ./stubs/cloud.google.com/go/compute/metadata
	github.com/cncf/udpa/go => ./stubs/github.com/cncf/udpa/go
	github.com/envoyproxy/go-control-plane => ./stubs/github.com/envoyproxy/go-control-plane
	github.com/golang/glog => ./stubs/github.com/golang/glog
	github.com/google/uuid => ./stubs/github.com/google/uuid
	golang.org/x/lint => ./stubs/golang.org/x/lint
	golang.org/x/mod => ./stubs/golang.org/x/mod
	golang.org/x/term => ./stubs/golang.org/x/term
	golang.org/x/tools => ./stubs/golang.org/x/tools
	google.golang.org/appengine => ./stubs/google.golang.org/appengine
	honnef.co/go/tools => ./stubs/honnef.co/go/tools
)
