//go:build tools

// Package tools pins cosign, which the e2e suite builds to check that the
// tool's in-process signatures verify with `cosign verify` (its own module:
// cosign's dependencies would move buildx's in ../go.mod).
package tools

import _ "github.com/sigstore/cosign/v2/cmd/cosign"
