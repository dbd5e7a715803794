//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/determined-ai/environments/magefiles/registry"
)

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
// (half of them two-platform indexes whose children share layers too) from
// the Hub registry into one NGC repository at once, with one registry.Client
// as publish does, raceRounds times; every copy must succeed and read back.
func TestParallelCopiesIntoOneRepository(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	srcs := pushSharingImages(t, ctx, stk.Hub+"/race/src")
	t.Logf("pushed %d layer-sharing sources in %s", len(srcs), time.Since(start).Round(time.Millisecond))

	c := registry.New(registry.WithKeychain(authn.NewMultiKeychain()))
	var failures []string
	copies, again := 0, 0
	start = time.Now()
	for round := range raceRounds {
		dst := fmt.Sprintf("%s/race/dst-%02d", stk.NGC, round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, src := range srcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tag := fmt.Sprintf("%s:img-%02d", dst, i)
				st, err := c.Copy(ctx, src, []string{tag})
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
func pushSharingImages(t *testing.T, ctx context.Context, repo string) []string {
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
			idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
				mutate.IndexAddendum{Add: image("amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
				mutate.IndexAddendum{Add: image("arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
			if err = remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err == nil {
				digest, err = idx.Digest()
			}
		}
		if err != nil {
			t.Fatalf("pushing %s: %v", tag, err)
		}
		out = append(out, tag.Context().Digest(digest.String()).String())
	}
	return out
}
