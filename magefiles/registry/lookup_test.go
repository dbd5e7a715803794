package registry

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// readBackRequests is how many requests reading idx back takes: per child
// manifest one GET of it, one GET of its config and one HEAD per layer.
func readBackRequests(t *testing.T, idx v1.ImageIndex) int {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		n += 2 + len(m.Layers)
	}
	return n
}

// upToDateRequests is the fewest registry requests that decide and verify
// one up-to-date image: a GET of the hashed tag's manifest, a HEAD of the
// versioned tag, and the read-back of the content (plus, once per client and
// registry, the ping).
func upToDateRequests(readBack int) int { return 1 + 1 + readBack }

func TestLookupReadsEachThingOnce(t *testing.T) {
	host := newMemRegistry(t)
	idx := buildIndex(t, twoPlatforms...)
	d := pushIndex(t, idx, host+"/env:cpu-abc123", host+"/env:cpu-0.1.0")
	p := newFaultProxy(t, host, func(int64, *http.Request) fault { return pass })
	c := testClient()
	tags := []string{p.Host + "/env:cpu-abc123", p.Host + "/env:cpu-0.1.0"}
	if _, err := c.Lookup(context.Background(), tags); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	if first := len(p.seen); first != 1+upToDateRequests(readBackRequests(t, idx)) || p.seen[0] != "GET /v2/" {
		t.Errorf("the first look-up made %d requests, want a ping and %d: %v", first, upToDateRequests(readBackRequests(t, idx)), p.seen)
	}
	p.seen = nil
	p.mu.Unlock()
	// The next look-up of the same client needs no ping.
	f, err := c.Lookup(context.Background(), tags)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Digests, []string{d, d}) || len(f.Problems) != 0 {
		t.Fatalf("found %+v", f)
	}
	if got := f.Images[d]; !slices.Equal(got.Platforms, twoPlatforms) || got.Labels["arch"] != "amd64" {
		t.Errorf("image %+v", got)
	}
	p.mu.Lock()
	seen := slices.Clone(p.seen)
	p.mu.Unlock()
	want := upToDateRequests(readBackRequests(t, idx))
	t.Logf("%d requests: %v", len(seen), seen)
	if len(seen) != want {
		t.Errorf("%d requests, want %d", len(seen), want)
	}
	for i, r := range seen {
		if slices.Contains(seen[:i], r) {
			t.Errorf("%s requested twice", r)
		}
	}
	if !slices.Contains(seen, "HEAD /v2/env/manifests/cpu-0.1.0") || slices.Contains(seen, "GET /v2/env/manifests/cpu-0.1.0") {
		t.Errorf("the second tag was not resolved with one HEAD: %v", seen)
	}
}

func TestLookupReportsMissingTagsAndBadContent(t *testing.T) {
	host := newMemRegistry(t)
	idx := buildIndex(t, twoPlatforms...)
	d := pushIndex(t, idx, host+"/env:cpu-0.1.0")
	c := testClient()
	f, err := c.Lookup(context.Background(), []string{host + "/env:cpu-abc123", host + "/env:cpu-0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Digests[0] != "" || f.Digests[1] != d || f.Images[d].Digest != d {
		t.Errorf("found %+v", f)
	}
	// A layer that is gone: reported, not an error.
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	m, _ := img.Manifest()
	layer := m.Layers[0].Digest.String()
	p := newFaultProxy(t, host, func(_ int64, r *http.Request) fault {
		if r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, layer) {
			return fail404
		}
		return pass
	})
	f, err = c.Lookup(context.Background(), []string{p.Host + "/env:cpu-0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(f.Problems[d], ErrVerify) {
		t.Errorf("problems %v, want ErrVerify for %s", f.Problems, d)
	}
	// A registry that cannot answer: an error, not a finding.
	down := newFaultProxy(t, host, func(int64, *http.Request) fault { return fail500 })
	if _, err := testClient(WithRetry(2, time.Millisecond)).Lookup(context.Background(), []string{down.Host + "/env:cpu-0.1.0"}); err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrVerify) {
		t.Errorf("err = %v, want a registry error", err)
	}
}

func TestDefaultRetriesOutlastAnOutage(t *testing.T) {
	host := newMemRegistry(t)
	d := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), host+"/env:x")
	until := time.Now().Add(3 * time.Second)
	p := newFaultProxy(t, host, func(int64, *http.Request) fault {
		if time.Now().Before(until) {
			return fail503
		}
		return pass
	})
	start := time.Now()
	f, err := New(WithKeychain(anonymous)).Lookup(context.Background(), []string{p.Host + "/env:x"}) // default retry policy
	t.Logf("after %s: %v; %s", time.Since(start).Round(time.Millisecond), err, p.summary())
	if err != nil || f.Digests[0] != d {
		t.Fatalf("Lookup through a 3 s outage: %+v, %v", f, err)
	}
	if injected, _ := p.Faults(); injected < 2 {
		t.Errorf("only %d faults injected", injected)
	}
}

func TestTagPointsATagWithoutUploads(t *testing.T) {
	host := newMemRegistry(t)
	d := pushIndex(t, buildIndex(t, twoPlatforms...), host+"/env:cpu-0.1.0")
	p := newFaultProxy(t, host, func(int64, *http.Request) fault { return pass })
	if err := testClient().Tag(context.Background(), p.Host+"/env@"+d, []string{p.Host + "/env:cpu-abc123", p.Host + "/env:cpu-def456"}); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"cpu-abc123", "cpu-def456"} {
		if got := digestOf(t, mustHead(t, host+"/env:"+tag)); got != d {
			t.Errorf("%s is %s, want %s", tag, got, d)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.seen {
		if strings.Contains(r, "/blobs/") {
			t.Errorf("Tag touched a blob: %s", r)
		}
	}
	if err := testClient().Tag(context.Background(), host+"/env@"+d, []string{host + "/other:x"}); err == nil {
		t.Error("tagging into another repository worked")
	}
	if err := testClient().Tag(context.Background(), host+"/env:cpu-0.1.0", []string{host + "/env:x"}); err == nil {
		t.Error("tagging from a tag (not a digest) worked")
	}
}

func TestResolveAsksTheMirrorFirst(t *testing.T) {
	origin, mirror := newMemRegistry(t), newMemRegistry(t)
	od := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), origin+"/library/ubuntu:20.04", origin+"/nvidia/cuda:11")
	md := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), mirror+"/library/ubuntu:20.04")
	c := testClient(WithMirrors(map[string]string{origin: mirror}))
	for ref, want := range map[string]string{
		origin + "/library/ubuntu:20.04": md, // on the mirror
		origin + "/nvidia/cuda:11":       od, // not on the mirror: the origin
		origin + "/library/ubuntu@" + od: od, // pinned already
	} {
		got, err := c.Resolve(context.Background(), ref)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %s, %v; want %s", ref, got, err, want)
		}
	}
	if _, err := c.Resolve(context.Background(), origin+"/nvidia/cuda:missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing tag: %v", err)
	}
}

type digester interface{ Digest() (v1.Hash, error) }

type headDesc struct{ d v1.Hash }

func (h headDesc) Digest() (v1.Hash, error) { return h.d, nil }

func mustHead(t *testing.T, ref string) digester {
	t.Helper()
	d, err := New(WithKeychain(anonymous)).Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(d)
	if err != nil {
		t.Fatal(err)
	}
	return headDesc{h}
}

func TestATooLongRetryAfterFailsAtOnce(t *testing.T) {
	host := newMemRegistry(t)
	pushImage(t, platformImage(t, "linux", "amd64", 1, nil), host+"/env:x")
	p := newFaultProxy(t, host, func(int64, *http.Request) fault { return fail503 })
	wrapped := &retryAfterTransport{inner: http.DefaultTransport, after: "600"}
	start := time.Now()
	_, err := New(WithKeychain(anonymous), WithTransport(wrapped)).Lookup(context.Background(), []string{p.Host + "/env:x"})
	if err == nil || !strings.Contains(err.Error(), "Retry-After") || time.Since(start) > 5*time.Second {
		t.Errorf("after %s: %v, want a prompt error naming the Retry-After", time.Since(start), err)
	}
}

func TestALayerSharedByPlatformsIsCheckedOnce(t *testing.T) {
	host := newMemRegistry(t)
	shared, err := random.Layer(300, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for _, p := range twoPlatforms {
		os, arch, _ := strings.Cut(p, "/")
		img, err := mutate.AppendLayers(platformImage(t, os, arch, 1, nil), shared)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}})
	}
	pushIndex(t, mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), host+"/env:x")
	d, err := shared.Digest()
	if err != nil {
		t.Fatal(err)
	}
	p := newFaultProxy(t, host, func(int64, *http.Request) fault { return pass })
	if _, err := testClient().Verify(context.Background(), []string{p.Host + "/env:x"}, "", twoPlatforms); err != nil {
		t.Fatal(err)
	}
	if n := p.count(http.MethodHead, d.String()); n != 1 {
		t.Errorf("the shared layer %s was checked %d times, want once", d, n)
	}
}
