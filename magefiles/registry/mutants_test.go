package registry

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// REGISTRY_MIRRORS names Docker Hub as people write it (docker.io); the
// references the recipes use (ubuntu:20.04) resolve to index.docker.io.
// The mirror must still be asked: Docker Hub is never contacted here.
func TestADockerHubMirrorIsUsedWhateverTheHubIsCalled(t *testing.T) {
	mirror := newMemRegistry(t)
	md := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), mirror+"/library/ubuntu:20.04")
	for _, key := range []string{"docker.io", "index.docker.io"} {
		c := testClient(WithMirrors(map[string]string{key: mirror}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := c.Resolve(ctx, "ubuntu:20.04")
		cancel()
		if err != nil || got != md {
			t.Errorf("WithMirrors(%s): Resolve(ubuntu:20.04) = %s, %v; want the mirror's %s", key, got, err, md)
		}
	}
	// Other hosts are kept as given.
	c := testClient(WithMirrors(map[string]string{"127.0.0.1:5000": mirror}))
	if c.mirrors["127.0.0.1:5000"] != mirror {
		t.Errorf("mirrors %v, want 127.0.0.1:5000 kept", c.mirrors)
	}
}

// What counts as a refusal of the credentials: 401 and 403 whatever the
// body, and the UNAUTHORIZED and DENIED error codes whatever the status;
// nothing else (a registry that is down must not read as "log in").
func TestDeniedIsAuthorisationOnly(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&transport.Error{StatusCode: http.StatusUnauthorized}, true},
		{&transport.Error{StatusCode: http.StatusForbidden}, true},
		{fmt.Errorf("checking: %w", &transport.Error{StatusCode: http.StatusForbidden}), true},
		{&transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.UnauthorizedErrorCode}}}, true},
		{&transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.BlobUploadInvalidErrorCode}, {Code: transport.DeniedErrorCode}}}, true},
		{&transport.Error{StatusCode: http.StatusInternalServerError}, false},
		{&transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}}, false},
		{errors.New("connection refused"), false},
	} {
		if got := denied(tc.err); got != tc.want {
			t.Errorf("denied(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A check that runs out of time says so, besides the registry's last answer.
func TestCheckPushPastItsTimeSaysSo(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(slow.Close)
	host := strings.TrimPrefix(slow.URL, "http://")
	err := New(WithKeychain(anonymous), WithRetry(2, time.Millisecond), WithTimeout(300*time.Millisecond)).CheckPush(context.Background(), host+"/org/repo")
	var pd *PushDeniedError
	if err == nil || errors.As(err, &pd) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "(registry "+host+")") {
		t.Errorf("CheckPush against a registry that never answers: %v, want a deadline error naming %s", err, host)
	}
	// A refusal that is not about time carries no time-out note.
	closed := httptest.NewServer(http.NotFoundHandler())
	chost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	err = New(WithKeychain(anonymous), WithRetry(2, time.Millisecond)).CheckPush(context.Background(), chost+"/org/repo")
	if err == nil || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "%!") {
		t.Errorf("CheckPush to a closed port: %v, want a plain connection error", err)
	}
}

// A copy inside one registry uploads nothing: every blob is there already
// (go-containerregistry's in-memory registry shares blobs between
// repositories, so each HEAD finds it).
func TestACopyInsideARegistryUploadsNothing(t *testing.T) {
	host := newMemRegistry(t)
	img := platformImage(t, "linux", "amd64", 2, nil)
	digest := pushImage(t, img, host+"/env:cpu-abc123")
	stats, err := testClient().Copy(context.Background(), host+"/env@"+digest, []string{host + "/mirror/env:cpu-abc123"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (CopyStats{BlobsSkipped: 3}); stats != want {
		t.Errorf("stats %+v, want %+v (two layers and the config mounted)", stats, want)
	}
}

// An index's labels are its linux/amd64 image's, wherever it sits, else the
// first image's.
func TestAnIndexTakesTheLabelsOfAmd64ElseOfItsFirstImage(t *testing.T) {
	host := newMemRegistry(t)
	for _, tc := range []struct {
		platforms []string
		arch      string
	}{
		{[]string{"linux/arm64", "linux/amd64"}, "amd64"},
		{[]string{"linux/arm64", "linux/ppc64le"}, "arm64"},
	} {
		ref := host + "/env:" + strings.ReplaceAll(strings.Join(tc.platforms, "-"), "/", "_")
		d := pushIndex(t, buildIndex(t, tc.platforms...), ref)
		f, err := testClient().Lookup(context.Background(), []string{ref})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Images[d].Labels["arch"]; got != tc.arch {
			t.Errorf("%v: labels of arch %q, want %q", tc.platforms, got, tc.arch)
		}
	}
}

func TestALeaseIsWrittenAndReadBack(t *testing.T) {
	host := newMemRegistry(t)
	c := testClient()
	ctx := context.Background()
	tag := host + "/env:cpu-py-38-base-build-lease"
	if l, found, err := c.ReadLease(ctx, tag); err != nil || found || l != (Lease{}) {
		t.Errorf("no lease yet: %+v, %v, %v; want not found and no error", l, found, err)
	}
	want := Lease{Inputs: "sha256:abc", Holder: "ci/42/beef", Expires: time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)}
	if err := c.WriteLease(ctx, tag, want); err != nil {
		t.Fatal(err)
	}
	got, found, err := c.ReadLease(ctx, tag)
	if err != nil || !found || !got.Expires.Equal(want.Expires) || got.Holder != want.Holder || got.Inputs != want.Inputs {
		t.Errorf("read back %+v, %v, %v; want %+v", got, found, err, want)
	}
}

func TestWhatIsNotALeaseIsAnError(t *testing.T) {
	host := newMemRegistry(t)
	c := testClient()
	ctx := context.Background()
	// An image without the label sits at the lease's tag.
	pushImage(t, platformImage(t, "linux", "amd64", 1, nil), host+"/env:x-build-lease")
	if _, found, err := c.ReadLease(ctx, host+"/env:x-build-lease"); err == nil || found || !strings.Contains(err.Error(), "the image there is no lease") {
		t.Errorf("an image that is no lease: found %v, %v", found, err)
	}
	// The label is not a lease.
	img, err := mutate.Config(empty.Image, v1.Config{Labels: map[string]string{LeaseLabel: "{not json"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, host+"/env:y-build-lease"), img); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.ReadLease(ctx, host+"/env:y-build-lease"); err == nil || found || !strings.HasPrefix(err.Error(), "reading lease "+host+"/env:y-build-lease: ") {
		t.Errorf("a label that is no lease: found %v, %v", found, err)
	}
	// Bad tags and unreachable registries are errors, never "no lease".
	for _, tag := range []string{"Not A Tag", "127.0.0.1:1/env:x-build-lease"} {
		if _, found, err := testClient(WithRetry(1, time.Millisecond)).ReadLease(ctx, tag); err == nil || found {
			t.Errorf("ReadLease(%q): found %v, %v; want an error", tag, found, err)
		}
		err := testClient(WithRetry(1, time.Millisecond)).WriteLease(ctx, tag, Lease{Holder: "h"})
		if err == nil {
			t.Errorf("WriteLease(%q): no error", tag)
		} else if strings.Contains(tag, "127.0.0.1:1") && !strings.Contains(err.Error(), "writing lease") {
			t.Errorf("WriteLease(%q): %v, want it to say writing lease", tag, err)
		}
	}
}

func TestAZeroTimeoutKeepsTheDefault(t *testing.T) {
	// docs/publishing.md: an operation never takes longer than 5 minutes.
	if c := New(WithTimeout(0)); c.timeout != 5*time.Minute {
		t.Errorf("WithTimeout(0): timeout %s, want the documented default 5m0s", c.timeout)
	}
	if c := New(WithTimeout(time.Second)); c.timeout != time.Second {
		t.Errorf("WithTimeout(1s): timeout %s", c.timeout)
	}
}

// A bare registry host that is no image reference still counts.
func TestLoopbackRegistryHosts(t *testing.T) {
	for ref, want := range map[string]bool{
		"[::1]:5000":               true,
		"LOCALHOST:5000":           true,
		"127.0.0.1:5000/env:x":     true,
		"nvcr.io/isv-ngc/env:x":    false,
		"[2001:db8::1]:5000":       false,
		"determinedai/environment": false,
	} {
		if got := IsLoopback(ref); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", ref, got, want)
		}
	}
}

// A tag that points at another digest than the wanted one fails
// verification, and the result still says what the tag points at.
func TestVerifyReportsWhatTheFirstTagPointsAt(t *testing.T) {
	host := newMemRegistry(t)
	d := pushIndex(t, buildIndex(t, twoPlatforms...), host+"/env:cpu-abc123")
	other := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), host+"/env:other")
	img, err := testClient().Verify(context.Background(), []string{host + "/env:cpu-abc123"}, other, twoPlatforms)
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("Verify against another digest: %v, want ErrVerify", err)
	}
	if img.Digest != d || img.Ref != host+"/env:cpu-abc123" {
		t.Errorf("result %s at %s, want the tag's own digest %s", img.Digest, img.Ref, d)
	}
}

func TestNormalizePlatformDropsOnlyArm64sDefaultVariant(t *testing.T) {
	for in, want := range map[string]string{
		"linux/arm64/v8": "linux/arm64",
		"linux/arm64/v9": "linux/arm64/v9",
		"linux/arm/v8":   "linux/arm/v8",
		"linux/arm/v7":   "linux/arm/v7",
		"linux/amd64/":   "linux/amd64",
		" linux/amd64 ":  "linux/amd64",
	} {
		if got := normalizePlatform(in); got != want {
			t.Errorf("normalizePlatform(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAttestationsAreTheAnnotatedOrUnknownOnes(t *testing.T) {
	for _, tc := range []struct {
		d    v1.Descriptor
		want bool
	}{
		{v1.Descriptor{Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}}, true},
		{v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}, true},
		{v1.Descriptor{}, false},
		{v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "amd64"}}, false},
		{v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "unknown"}}, false},
		{v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}, false},
	} {
		if got := isAttestation(tc.d); got != tc.want {
			t.Errorf("isAttestation(%+v %v) = %v, want %v", tc.d.Platform, tc.d.Annotations, got, tc.want)
		}
	}
}
