//go:build e2e

package e2e

import (
	"context"
)

// Supply-chain settings of every scenario (set up once by TestMain).
var (
	signingKey    string // SIGNING_KEY: a key made for the suite
	sbomGenerator string // SBOM_GENERATOR: the stand-in on the Mirror, by digest
)

// setUpSupplyChain writes the suite's signing key into tmp and seeds the
// SBOM generator stand-in to the Mirror (stack.SeedSupplyChain, which the
// bench uses too).
func setUpSupplyChain(ctx context.Context, tmp string) error {
	var err error
	signingKey, sbomGenerator, err = stk.SeedSupplyChain(ctx, rootDir, tmp)
	return err
}
