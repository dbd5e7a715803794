//go:build tools

// Package mutants pins the Go mutation tester that `go run magefile.go
// mutants` builds and runs (gremlins). It is a module of its own so that the
// tester's dependencies never touch the main module or the BuildKit/buildx
// pins in tools/go.mod.
package mutants

import (
	_ "github.com/go-gremlins/gremlins/cmd/gremlins"
)
