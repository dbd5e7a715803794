//go:build tools

// Package tools pins the versions of the binaries the end-to-end test stack
// builds from source (BuildKit's buildkitd and the buildx CLI plugin). It is a
// separate module so that BuildKit's exclude/replace-heavy dependency graph
// never leaks into the main module.
//
// Build them with, for example:
//
//	go build -o DIR/buildkitd github.com/moby/buildkit/cmd/buildkitd
//	go build -o DIR/docker-buildx github.com/docker/buildx/cmd/buildx
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
