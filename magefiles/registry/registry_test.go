package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var twoPlatforms = []string{"linux/amd64", "linux/arm64"}

func testClient(opts ...Option) *Client {
	return New(append([]Option{WithKeychain(anonymous), WithRetry(6, 5*time.Millisecond), WithTimeout(20 * time.Second)}, opts...)...)
}

func TestVerifyIndexOK(t *testing.T) {
	host := newMemRegistry(t)
	// Count layer downloads: Verify must only HEAD layers.
	proxy := newFaultProxy(t, host, func(int64, *http.Request) fault { return pass })
	hash, version := proxy.Host+"/determined/env:cuda-abc123", proxy.Host+"/determined/env:cuda-0.1.0"
	digest := pushIndex(t, buildIndex(t, twoPlatforms...), hash, version)
	getsBefore, headsBefore := proxy.count(http.MethodGet, "/blobs/"), proxy.count(http.MethodHead, "/blobs/")

	img, err := testClient().Verify(context.Background(), []string{hash, version}, "", []string{"linux/arm64", "linux/amd64"})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if img.Digest != digest {
		t.Errorf("digest %s, want %s", img.Digest, digest)
	}
	if img.Ref != hash {
		t.Errorf("ref %q, want %q", img.Ref, hash)
	}
	if !slices.Equal(img.Platforms, twoPlatforms) {
		t.Errorf("platforms %v, want %v (attestation must not count)", img.Platforms, twoPlatforms)
	}
	if img.Labels["arch"] != "amd64" || img.Labels["org.opencontainers.image.version"] != "1.2.3" {
		t.Errorf("labels %v, want those of the linux/amd64 image", img.Labels)
	}
	// Read back: three config blobs (two platforms and the attestation) were
	// downloaded, the five layers only checked for existence.
	if got := proxy.count(http.MethodGet, "/blobs/") - getsBefore; got != 3 {
		t.Errorf("%d blob GETs, want 3 (configs only)", got)
	}
	if got := proxy.count(http.MethodHead, "/blobs/") - headsBefore; got != 5 {
		t.Errorf("%d blob HEADs, want 5 (one per layer)", got)
	}
	// With the wanted digest given explicitly too.
	if _, err := testClient().Verify(context.Background(), []string{hash, version}, digest, twoPlatforms); err != nil {
		t.Errorf("Verify with digest: %v", err)
	}
}

func TestInspectSingleImage(t *testing.T) {
	host := newMemRegistry(t)
	ref := host + "/single:v1"
	digest := pushImage(t, platformImage(t, "linux", "arm64", 2, map[string]string{"a": "b"}), ref)
	img, err := testClient().Inspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != digest || !slices.Equal(img.Platforms, []string{"linux/arm64"}) || img.Labels["a"] != "b" {
		t.Errorf("got %+v, want digest %s, [linux/arm64], a=b", img, digest)
	}
}

func TestVerifyMissingTag(t *testing.T) {
	host := newMemRegistry(t)
	hash := host + "/determined/env:cuda-abc123"
	missing := host + "/determined/env:cuda-0.1.0"
	pushIndex(t, buildIndex(t, twoPlatforms...), hash)

	_, err := testClient().Verify(context.Background(), []string{hash, missing}, "", twoPlatforms)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the missing tag %s", err, missing)
	}
	// Also for a repository that does not exist at all.
	_, err = testClient().Verify(context.Background(), []string{host + "/nope:x"}, "", nil)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown repo: err = %v, want ErrNotFound", err)
	}
}

func TestVerifyTagsOnDifferentDigests(t *testing.T) {
	host := newMemRegistry(t)
	hash, version := host+"/env:cuda-abc123", host+"/env:cuda-0.1.0"
	d1 := pushIndex(t, buildIndex(t, twoPlatforms...), hash)
	d2 := pushIndex(t, buildIndex(t, twoPlatforms...), version)

	_, err := testClient().Verify(context.Background(), []string{hash, version}, "", twoPlatforms)
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify", err)
	}
	for _, s := range []string{d1, d2, version} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

func TestVerifyMissingPlatform(t *testing.T) {
	host := newMemRegistry(t)
	ref := host + "/env:cpu-abc123"
	pushIndex(t, buildIndex(t, "linux/amd64"), ref)

	_, err := testClient().Verify(context.Background(), []string{ref}, "", twoPlatforms)
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify", err)
	}
	if !strings.Contains(err.Error(), "missing [linux/arm64]") {
		t.Errorf("error %q does not name the missing platform", err)
	}
	// An unexpected extra platform fails too.
	_, err = testClient().Verify(context.Background(), []string{ref}, "", []string{"linux/arm64"})
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "unexpected [linux/amd64]") {
		t.Errorf("extra platform: err = %v, want ErrVerify naming linux/amd64", err)
	}
}

func TestVerifyWrongWantDigest(t *testing.T) {
	host := newMemRegistry(t)
	ref := host + "/env:cpu-abc123"
	got := pushIndex(t, buildIndex(t, twoPlatforms...), ref)
	want := "sha256:" + strings.Repeat("0", 64)

	_, err := testClient().Verify(context.Background(), []string{ref}, want, twoPlatforms)
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify", err)
	}
	if !strings.Contains(err.Error(), got) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q should name %s and %s", err, got, want)
	}
}

func TestCopyPreservesDigest(t *testing.T) {
	src, dst := newMemRegistry(t), newMemRegistry(t)
	idx := buildIndex(t, twoPlatforms...)
	digest := pushIndex(t, idx, src+"/determined/env:cuda-abc123")
	dsts := []string{dst + "/nvidia/env:cuda-abc123", dst + "/nvidia/env:cuda-0.1.0", dst + "/other/env:latest"}

	c := testClient()
	stats, err := c.Copy(context.Background(), src+"/determined/env@"+digest, dsts)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	t.Logf("first copy: %+v", stats)
	if stats.BlobsUploaded == 0 || stats.BytesUploaded == 0 {
		t.Errorf("first copy uploaded nothing: %+v", stats)
	}
	wantRaw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dsts {
		desc, err := remote.Get(mustRef(t, d))
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if desc.Digest.String() != digest || string(desc.Manifest) != string(wantRaw) {
			t.Errorf("%s: digest %s, want %s", d, desc.Digest, digest)
		}
	}
	// All children, attestation included, are readable at the destination.
	if _, err := c.Verify(context.Background(), dsts, digest, twoPlatforms); err != nil {
		t.Errorf("Verify after copy: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if _, err := remote.Get(mustRef(t, dst+"/other/env@"+m.Digest.String())); err != nil {
			t.Errorf("child %s (%v) missing at destination: %v", m.Digest, m.Annotations, err)
		}
	}

	// Copying again uploads nothing.
	stats, err = c.Copy(context.Background(), src+"/determined/env@"+digest, dsts)
	if err != nil {
		t.Fatalf("second Copy: %v", err)
	}
	t.Logf("second copy: %+v", stats)
	if stats.BlobsUploaded != 0 || stats.BytesUploaded != 0 {
		t.Errorf("second copy uploaded %+v, want nothing", stats)
	}
}

func TestCopyUploadsOnlyNewBlobs(t *testing.T) {
	src, dst := newMemRegistry(t), newMemRegistry(t)
	img := platformImage(t, "linux", "amd64", 3, nil)
	digest := pushImage(t, img, src+"/env:cpu-abc123")
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	// The destination already has the first two layers.
	for _, l := range layers[:2] {
		if err := remote.WriteLayer(mustRef(t, dst+"/ngc/env:x").Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	newLayerSize, err := layers[2].Size()
	if err != nil {
		t.Fatal(err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	stats, err := testClient().Copy(context.Background(), src+"/env@"+digest, []string{dst + "/ngc/env:cpu-abc123"})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	want := CopyStats{BlobsUploaded: 2, BlobsSkipped: 2, BytesUploaded: newLayerSize + int64(len(rawCfg))}
	if stats != want {
		t.Errorf("stats %+v, want %+v (one new layer and the config)", stats, want)
	}
	desc, err := remote.Head(mustRef(t, dst+"/ngc/env:cpu-abc123"))
	if err != nil || desc.Digest.String() != digest {
		t.Errorf("destination: %v %v, want %s", desc, err, digest)
	}
}

func TestCopyNeedsDigest(t *testing.T) {
	_, err := testClient().Copy(context.Background(), "127.0.0.1:1/env:tag", []string{"127.0.0.1:1/x:y"})
	if err == nil || !strings.Contains(err.Error(), "pinned by digest") {
		t.Errorf("err = %v, want a pinned-by-digest error", err)
	}
}

func TestFaultsSurvived(t *testing.T) {
	var uploadFaults atomic.Int64
	isUpload := func(r *http.Request) bool {
		return r.Method == http.MethodPatch || (r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"))
	}
	for _, tc := range []struct {
		name     string
		schedule func(int64, *http.Request) fault
	}{
		{"bursts of 429/503, 500s and drops", bursty},
		{"every 6th request dropped", func(n int64, _ *http.Request) fault {
			if n%6 == 5 {
				return drop
			}
			return pass
		}},
		// Blob data and upload commits are retried by restarting the whole
		// upload; make sure that path is exercised.
		{"uploads fail", func(n int64, r *http.Request) fault {
			if !isUpload(r) {
				return pass
			}
			switch n % 10 {
			case 0:
				uploadFaults.Add(1)
				return drop
			case 5:
				uploadFaults.Add(1)
				return fail503
			}
			return pass
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcReg, dstReg := newMemRegistry(t), newMemRegistry(t)
			srcProxy := newFaultProxy(t, srcReg, tc.schedule)
			dstProxy := newFaultProxy(t, dstReg, tc.schedule)
			idx := buildIndex(t, twoPlatforms...)
			digest := pushIndex(t, idx, srcReg+"/env:cuda-abc123", srcReg+"/env:cuda-0.1.0")

			c := testClient(WithRetry(10, 2*time.Millisecond))
			img, err := c.Verify(context.Background(), []string{srcProxy.Host + "/env:cuda-abc123", srcProxy.Host + "/env:cuda-0.1.0"}, "", twoPlatforms)
			if err != nil {
				t.Fatalf("Verify through faults: %v", err)
			}
			if img.Digest != digest {
				t.Fatalf("digest %s, want %s", img.Digest, digest)
			}
			dsts := []string{dstProxy.Host + "/ngc/env:cuda-abc123", dstProxy.Host + "/ngc/env:cuda-0.1.0"}
			stats, err := c.Copy(context.Background(), srcProxy.Host+"/env@"+digest, dsts)
			if err != nil {
				t.Fatalf("Copy through faults: %v", err)
			}
			t.Logf("copy stats: %+v", stats)
			if _, err := c.Verify(context.Background(), dsts, digest, twoPlatforms); err != nil {
				t.Fatalf("Verify copy through faults: %v", err)
			}
			// And straight from the destination registry, without the proxy.
			if _, err := testClient().Verify(context.Background(), []string{dstReg + "/ngc/env:cuda-abc123", dstReg + "/ngc/env:cuda-0.1.0"}, digest, twoPlatforms); err != nil {
				t.Fatalf("Verify copy directly: %v", err)
			}
			injected, survived := logFaults(t, srcProxy, dstProxy)
			if injected == 0 {
				t.Fatal("no faults were injected")
			}
			if survived == 0 {
				t.Error("no injected fault was followed by a successful retry")
			}
		})
	}
	if uploadFaults.Load() == 0 {
		t.Error("no blob upload step was ever faulted")
	}
}

func TestRegistryDown(t *testing.T) {
	down := newFaultProxy(t, "127.0.0.1:1", func(int64, *http.Request) fault { return fail503 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	var downErrs []error // the errors of the operations against down
	for _, tc := range []struct{ name, host string }{{"always 503", down.Host}, {"closed port", closed}} {
		t.Run("verify "+tc.name, func(t *testing.T) {
			c := New(WithKeychain(anonymous), WithTimeout(2*time.Second)) // default retry policy
			start := time.Now()
			_, err := c.Verify(context.Background(), []string{tc.host + "/env:cpu-abc123"}, "", twoPlatforms)
			elapsed := time.Since(start)
			t.Logf("failed after %s: %v", elapsed, err)
			if tc.host == down.Host {
				downErrs = append(downErrs, err)
			}
			if err == nil {
				t.Fatal("Verify succeeded against a registry that is down")
			}
			if elapsed > 10*time.Second {
				t.Errorf("took %s, want < 10s", elapsed)
			}
			if !strings.Contains(err.Error(), "registry "+tc.host) {
				t.Errorf("error %q does not name the registry host %s", err, tc.host)
			}
			if errors.Is(err, ErrVerify) || errors.Is(err, ErrNotFound) {
				t.Errorf("an outage must not look like a verification failure: %v", err)
			}
		})
	}
	t.Run("copy to a registry that is down", func(t *testing.T) {
		src := newMemRegistry(t)
		digest := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), src+"/env:x")
		c := New(WithKeychain(anonymous), WithTimeout(2*time.Second))
		start := time.Now()
		_, err := c.Copy(context.Background(), src+"/env@"+digest, []string{down.Host + "/ngc/env:x"})
		elapsed := time.Since(start)
		t.Logf("failed after %s: %v", elapsed, err)
		downErrs = append(downErrs, err)
		if err == nil || elapsed > 10*time.Second || !strings.Contains(err.Error(), "registry "+down.Host) {
			t.Errorf("err = %v after %s, want an error naming %s within 10s", err, elapsed, down.Host)
		}
	})
	if len(downErrs) == 2 && downErrs[0] != nil && downErrs[1] != nil {
		logCaught(t, errors.Join(downErrs...), down)
	} else {
		logCaught(t, nil, down) // an operation succeeded: nothing caught
	}
}

func TestTagMovesBetweenReads(t *testing.T) {
	host := newMemRegistry(t)
	ref := host + "/env:cuda-0.1.0"
	pushIndex(t, buildIndex(t, twoPlatforms...), ref)
	c := testClient()
	first, err := c.Verify(context.Background(), []string{ref}, "", twoPlatforms)
	if err != nil {
		t.Fatal(err)
	}
	moved := pushIndex(t, buildIndex(t, twoPlatforms...), ref) // someone re-tags
	_, err = c.Verify(context.Background(), []string{ref}, first.Digest, twoPlatforms)
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify", err)
	}
	if !strings.Contains(err.Error(), first.Digest) || !strings.Contains(err.Error(), moved) {
		t.Errorf("error %q should name %s and %s", err, first.Digest, moved)
	}
}

func TestUnreadableContent(t *testing.T) {
	host := newMemRegistry(t)
	idx := buildIndex(t, twoPlatforms...)
	pushIndex(t, idx, host+"/env:cuda-abc123")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	amd64, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := amd64.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	config, layer, child := m.Config.Digest.String(), m.Layers[1].Digest.String(), im.Manifests[1].Digest.String()

	for _, tc := range []struct {
		name       string
		method     string
		path       string
		f          fault
		wantVerify bool
	}{
		{"config blob 404", http.MethodGet, "/blobs/" + config, fail404, true},
		{"config blob 500 forever", http.MethodGet, "/blobs/" + config, fail500, false},
		{"layer blob missing", http.MethodHead, "/blobs/" + layer, fail404, true},
		{"child manifest missing", http.MethodGet, "/manifests/" + child, fail404, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFaultProxy(t, host, func(_ int64, r *http.Request) fault {
				if r.Method == tc.method && strings.HasSuffix(r.URL.Path, tc.path) {
					return tc.f
				}
				return pass
			})
			_, err := testClient().Verify(context.Background(), []string{p.Host + "/env:cuda-abc123"}, "", twoPlatforms)
			injected := logCaught(t, err, p)
			t.Logf("error: %v", err)
			if err == nil {
				t.Fatal("Verify succeeded although content could not be read back")
			}
			if injected == 0 {
				t.Fatal("no fault injected")
			}
			if got := errors.Is(err, ErrVerify); got != tc.wantVerify {
				t.Errorf("errors.Is(err, ErrVerify) = %v, want %v", got, tc.wantVerify)
			}
			if !strings.Contains(err.Error(), p.Host) {
				t.Errorf("error %q does not name the registry", err)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	host := newMemRegistry(t)
	ref := host + "/env:x"
	pushImage(t, platformImage(t, "linux", "amd64", 1, nil), ref)
	// The first manifest GET gets a 503 with Retry-After: 1.
	p := newFaultProxy(t, host, func(n int64, r *http.Request) fault {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") && n < 3 {
			return fail503
		}
		return pass
	})
	wrapped := &retryAfterTransport{inner: http.DefaultTransport, after: "1"}
	start := time.Now()
	if _, err := New(WithKeychain(anonymous), WithRetry(3, time.Millisecond), WithTransport(wrapped)).Inspect(context.Background(), p.Host+"/env:x"); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if injected, _ := logFaults(t, p); injected == 0 {
		t.Fatal("no fault injected")
	}
	if elapsed < 900*time.Millisecond {
		t.Errorf("finished after %s, Retry-After: 1 was not honoured", elapsed)
	}
}

// retryAfterTransport adds Retry-After to 503 answers.
type retryAfterTransport struct {
	inner http.RoundTripper
	after string
}

func (rt *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.inner.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
		resp.Header.Set("Retry-After", rt.after)
	}
	return resp, err
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":     0,
		"0":    0,
		"3":    3 * time.Second,
		"-1":   0,
		"soon": 0,
		now.Add(10 * time.Second).Format(http.TimeFormat): 10 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for ref, want := range map[string]bool{
		"127.0.0.1:5000/env:x": true,
		"127.1.2.3/env:x":      true,
		"localhost:5000/env:x": true,
		"localhost/env:x":      true,
		"LOCALHOST:5000/a/b@sha256:" + strings.Repeat("a", 64): true,
		"[::1]:5000/env:x":                         true,
		"docker.io/determinedai/env:x":             false,
		"determinedai/env:x":                       false,
		"nvcr.io/isv-ngc-partner/determined/env:x": false,
		"10.0.0.5:5000/env:x":                      false,
		"192.168.1.10/env:x":                       false,
		"registry.local/env:x":                     false,
		"localhost.example.com/env:x":              false,
		"128.0.0.1/env:x":                          false,
		"":                                         false,
	} {
		if got := IsLoopback(ref); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestNonLoopbackIsHTTPSOnly(t *testing.T) {
	for _, ref := range []string{
		"example.invalid/x:y",
		"10.1.2.3:5000/x:y",  // ggcr would fall back to http for RFC 1918 ...
		"registry.local/x:y", // ... and for .local
		"nvcr.io/isv/determined@sha256:" + strings.Repeat("b", 64),
	} {
		t.Run(ref, func(t *testing.T) {
			rec := &recordingTransport{}
			c := New(WithKeychain(anonymous), WithTransport(rec), WithRetry(2, time.Millisecond), WithTimeout(5*time.Second))
			if _, err := c.Inspect(context.Background(), ref); err == nil {
				t.Fatal("Inspect succeeded without a registry")
			}
			if _, err := c.Copy(context.Background(), "example.invalid/src@sha256:"+strings.Repeat("c", 64), []string{ref}); err == nil {
				t.Fatal("Copy succeeded without a registry")
			}
			reqs := rec.requests()
			if len(reqs) == 0 {
				t.Fatal("no request recorded")
			}
			for _, r := range reqs {
				if !strings.Contains(r, " https://") {
					t.Errorf("non-https request: %s", r)
				}
			}
			t.Logf("requests: %v", reqs)
		})
	}
	// The loopback registry, by contrast, is reached over plain HTTP.
	host := newMemRegistry(t)
	pushImage(t, platformImage(t, "linux", "amd64", 1, nil), host+"/env:x")
	if _, err := testClient().Inspect(context.Background(), host+"/env:x"); err != nil {
		t.Errorf("loopback Inspect: %v", err)
	}
}
