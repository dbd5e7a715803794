package stack

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
)

// cosignModule is the module tools/cosign/go.mod pins.
const cosignModule = "github.com/sigstore/cosign/v2"

// BuildCosign builds the cosign CLI pinned in tools/cosign/go.mod into the
// stack's cache (once per version; a cold build takes minutes) and returns
// its path. The e2e suite checks with it that the tool's in-process
// signatures verify with `cosign verify`.
func BuildCosign(ctx context.Context, log io.Writer) (string, error) {
	tools, err := findToolsDir("")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tools, "cosign")
	version, err := requiredVersion(dir, cosignModule)
	if err != nil {
		return "", err
	}
	cache, err := DefaultCacheDir()
	if err != nil {
		return "", err
	}
	bin, err := buildTool(ctx, log, dir, cache, "cosign", version,
		cosignModule+"/cmd/cosign", "sigs.k8s.io/release-utils/version")
	if err != nil {
		return "", fmt.Errorf("stack: building cosign: %w", err)
	}
	return bin, nil
}
