//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/supplytest"
)

// repoOfDigest strips the digest of repo@sha256:... .
func repoOfDigest(ref string) string { return ref[:strings.LastIndex(ref, "@")] }

// Stress test of parallel registry writes: publish copies the NGC images at
// the same time, and images built on one base share its layers, so several
// copies upload the same blobs into one repository at once. The Debian
// distribution registry once refused such a copy (DIGEST_INVALID on a blob
// upload, then MANIFEST_BLOB_UNKNOWN on the manifest PUT).
const (
	raceImages = 16 // images copied at once (a publish copies its 8 NGC images at once)
	raceRounds = 20 // each round into a fresh repository, so every blob is missing
	// raceShared layers are in every image (the base's layers), raceOwn
	// layers only in one (the framework's).
	raceShared, raceOwn = 4, 2
	raceLayerBytes      = 512 << 10
)

// TestParallelCopiesIntoOneRepository copies raceImages layer-sharing images
// (half of them two-platform indexes whose children share layers too, each
// with BuildKit's attestation manifests, which have a subject, and a cosign
// signature) from the Hub registry into one NGC repository at once, with
// one registry.Client as publish does, raceRounds times; every copy must
// succeed and read back, with its signature, and the repository must hold
// the copies' tags and signature tags only: no referrers fallback tag
// (sha256-<digest>), which go-containerregistry would otherwise
// read-modify-write from every copy at once.
func TestParallelCopiesIntoOneRepository(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	c := registry.New(registry.WithKeychain(authn.NewMultiKeychain()))
	srcs := pushSharingImages(t, ctx, c, stk.Hub+"/race/src")
	t.Logf("pushed %d layer-sharing sources in %s", len(srcs), time.Since(start).Round(time.Millisecond))

	var failures []string
	copies, again := 0, 0
	start = time.Now()
	for round := range raceRounds {
		dst := fmt.Sprintf("%s/race/dst-%02d", stk.NGC, round)
		var wantTags []string
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, src := range srcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tag := fmt.Sprintf("%s:img-%02d", dst, i)
				st, err := c.Copy(ctx, src, []string{tag})
				if err == nil {
					err = c.CopySignatures(ctx, repoOfDigest(src), dst, src[strings.LastIndex(src, "@")+1:])
				}
				mu.Lock()
				defer mu.Unlock()
				copies++
				again += st.RacePushes
				if err != nil {
					failures = append(failures, fmt.Sprintf("round %d, %s -> %s: %v", round, src, tag, err))
				}
			}()
		}
		wg.Wait()
		// Every copy reads back completely at the source digest.
		for i, src := range srcs {
			tag := fmt.Sprintf("%s:img-%02d", dst, i)
			want := src[strings.LastIndex(src, "@")+1:]
			if _, err := c.Verify(ctx, []string{tag}, want, nil); err != nil {
				failures = append(failures, fmt.Sprintf("round %d, verifying %s: %v", round, tag, err))
			}
			if sigs, err := c.Signatures(ctx, dst, want); err != nil || len(sigs) != 1 {
				failures = append(failures, fmt.Sprintf("round %d, %s: %d signatures (%v), want 1", round, tag, len(sigs), err))
			}
			wantTags = append(wantTags, fmt.Sprintf("img-%02d", i), registry.SignatureTag(want))
		}
		slices.Sort(wantTags)
		r, err := name.NewRepository(dst, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.List(r, remote.WithContext(ctx))
		slices.Sort(got)
		if err != nil || !slices.Equal(got, wantTags) {
			failures = append(failures, fmt.Sprintf("round %d: %s has tags %v (%v), want only %v", round, dst, got, err, wantTags))
		}
	}
	t.Logf("%d parallel copies (%d at once, %d rounds) in %s: %d pushes repeated after a write race, %d failures",
		copies, len(srcs), raceRounds, time.Since(start).Round(time.Millisecond), again, len(failures))
	if copies != raceImages*raceRounds {
		t.Errorf("%d copies ran, want %d", copies, raceImages*raceRounds)
	}
	for _, f := range failures {
		t.Error(f)
	}
}

// pushSharingImages pushes raceImages images to repo, each made of the same
// raceShared layers plus raceOwn of its own; every other one is an index of
// linux/amd64 and linux/arm64 images that share the layers as well. It
// returns repo@digest of each.
func pushSharingImages(t *testing.T, ctx context.Context, c *registry.Client, repo string) []string {
	t.Helper()
	shared := make([]v1.Layer, raceShared)
	for i := range shared {
		l, err := random.Layer(raceLayerBytes, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		shared[i] = l
	}
	image := func(arch string) v1.Image {
		layers := append([]v1.Layer(nil), shared...)
		for range raceOwn {
			l, err := random.Layer(raceLayerBytes/4, types.DockerLayer)
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, l)
		}
		img, err := mutate.AppendLayers(empty.Image, layers...)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		return img
	}
	var out []string
	for i := range raceImages {
		tag := ref(t, fmt.Sprintf("%s:src-%02d", repo, i))
		var digest v1.Hash
		var err error
		if i%2 == 0 {
			img := image("amd64")
			if err = remote.Write(tag, img, remote.WithContext(ctx)); err == nil {
				digest, err = img.Digest()
			}
		} else {
			adds := []mutate.IndexAddendum{}
			for _, arch := range []string{"amd64", "arm64"} {
				img := image(arch)
				att, desc, err := supplytest.Attestation(img, "linux/"+arch, supplytest.Options{})
				if err != nil {
					t.Fatal(err)
				}
				adds = append(adds,
					mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}},
					mutate.IndexAddendum{Add: att, Descriptor: desc})
			}
			idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
			if err = remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err == nil {
				digest, err = idx.Digest()
			}
		}
		if err != nil {
			t.Fatalf("pushing %s: %v", tag, err)
		}
		sig := registry.Signature{Payload: []byte(`{"critical":{"image":{"docker-manifest-digest":"` + digest.String() + `"}}}`), Signature: "c3RhbmQtaW4="}
		if err := c.AddSignatures(ctx, repo, digest.String(), []registry.Signature{sig}); err != nil {
			t.Fatal(err)
		}
		out = append(out, tag.Context().Digest(digest.String()).String())
	}
	return out
}
