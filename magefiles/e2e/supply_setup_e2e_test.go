//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/determined-ai/environments/magefiles/sign"
)

// Supply-chain settings of every scenario (set up once by TestMain).
var (
	signingKey    string // SIGNING_KEY: a key made for the suite
	sbomGenerator string // SBOM_GENERATOR: the stand-in on the Mirror, by digest
)

// sbomStandInRef is where the SBOM generator stand-in lives (on the Mirror,
// as docker.io/<this>, so buildkitd pulls it through its mirror like the
// real one).
const sbomStandInRef = "determined-e2e/sbom-generator:1"

// setUpSupplyChain writes the suite's signing key into tmp and seeds the
// SBOM generator stand-in (testdata/sbomgen, static for amd64 and arm64:
// BuildKit runs the generator on the build platform) to the Mirror.
func setUpSupplyChain(ctx context.Context, tmp string) error {
	pem, err := sign.GenerateKey()
	if err != nil {
		return err
	}
	signingKey = filepath.Join(tmp, "signing.pem")
	if err := os.WriteFile(signingKey, pem, 0o600); err != nil {
		return err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		bin := filepath.Join(tmp, "sbomgen-"+arch)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./magefiles/e2e/testdata/sbomgen")
		cmd.Dir = rootDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building the SBOM generator stand-in for %s: %w\n%s", arch, err, out)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		layer, err := layerOf([]tarEntry{{name: "sbomgen", content: string(b), mode: 0o755}})
		if err != nil {
			return err
		}
		img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
		if err != nil {
			return err
		}
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		cf.Config.Entrypoint = []string{"/sbomgen"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	dst, err := stk.MirrorRef(sbomStandInRef)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(dst, idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("seeding the SBOM generator stand-in to %s: %w", dst, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	sbomGenerator = "docker.io/" + sbomStandInRef[:len(sbomStandInRef)-len(":1")] + "@" + d.String()
	return nil
}
