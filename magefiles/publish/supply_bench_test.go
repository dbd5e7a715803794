package publish

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
	"github.com/determined-ai/environments/magefiles/supplytest"
)

// BenchmarkSupplyChainSteps measures what a publish adds per image after
// its push, against the in-memory registry on loopback for a two-platform
// image: "sign" is signing its two tags (payloads, ECDSA, the .sig manifest
// read and written), "check" the checks at one registry (the index, both
// attestations, the signatures, ECDSA verification). A publish signs once
// and checks twice (Docker Hub, NGC).
func BenchmarkSupplyChainSteps(b *testing.B) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	b.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/determinedai/environments"
	bases := map[string]string{repo + ":base-abc": "sha256:" + strings.Repeat("ab", 32)}
	pkgs := []supplytest.Package{{Name: "torch", Version: "1.12.1+cpu"}, {Name: "horovod", Version: "0.27.0"}}
	idx, err := supplytest.Index(supplytest.Options{Platforms: []string{"linux/amd64", "linux/arm64"}, Materials: bases, Packages: pkgs})
	if err != nil {
		b.Fatal(err)
	}
	ref, err := name.ParseReference(repo+":tf2-abc", name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		b.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		b.Fatal(err)
	}
	digest := d.String()
	pem, err := sign.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	keyFile := filepath.Join(b.TempDir(), "k.pem")
	if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
		b.Fatal(err)
	}
	signer, err := sign.LoadSigner(keyFile)
	if err != nil {
		b.Fatal(err)
	}
	c := registry.New()
	ctx := context.Background()
	w := supplyWant{Image: "tf2-cpu", Inputs: "sha256:in", Platforms: []string{"linux/amd64", "linux/arm64"},
		Bases: bases, Packages: []pkgVersion{{"torch", "1.12.1+cpu"}, {"horovod", "0.27.0"}}, Tags: []string{"tf2-abc", "tf2-0.1.0"}}
	signTags := func(digest string) {
		var sigs []registry.Signature
		for _, t := range w.Tags {
			p, err := sign.NewPayload(sign.Claim{Repository: repo, Digest: digest, Tag: t, Image: w.Image, Inputs: w.Inputs, Bases: joinBases(bases)})
			if err != nil {
				b.Fatal(err)
			}
			s, err := signer.Sign(p)
			if err != nil {
				b.Fatal(err)
			}
			sigs = append(sigs, registry.Signature{Payload: p, Signature: s})
		}
		if _, err := c.Signatures(ctx, repo, digest); err != nil {
			b.Fatal(err)
		}
		if err := c.AddSignatures(ctx, repo, digest, sigs); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("sign", func(b *testing.B) {
		for i := range b.N {
			// Each round a digest without signatures, as a new image.
			signTags(fmt.Sprintf("sha256:%064x", i))
		}
	})
	signTags(digest)
	b.Run("check", func(b *testing.B) {
		for range b.N {
			s, err := c.ReadSupply(ctx, repo+"@"+digest)
			if err != nil {
				b.Fatal(err)
			}
			sigs, err := c.Signatures(ctx, repo, digest)
			if err != nil {
				b.Fatal(err)
			}
			if err := checkSupply(s, sigs, signer.Verifier(), digest, w); err != nil {
				b.Fatal(err)
			}
		}
	})
}
