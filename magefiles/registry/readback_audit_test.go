package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	memreg "github.com/google/go-containerregistry/pkg/registry"
)

// staleTagRegistry accepts every write but, like a registry whose tag
// update was lost (or a cache in front of it), answers GETs of one tag's
// manifest with another manifest: the one under the tag "stale".
type staleTagRegistry struct {
	inner  http.Handler
	tag    string
	served atomic.Int64
}

func (s *staleTagRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+s.tag) {
		s.served.Add(1)
		r = r.Clone(r.Context())
		r.URL.Path = strings.TrimSuffix(r.URL.Path, s.tag) + "stale"
	}
	s.inner.ServeHTTP(w, r)
}

// Copy reads each destination back and fails when it resolves to anything
// but the source digest: without that check this copy would be reported as
// done although the tag serves another image.
func TestCopyFailsWhenTheDestinationReadsBackAnotherDigest(t *testing.T) {
	src := newMemRegistry(t)
	digest := pushIndex(t, buildIndex(t, twoPlatforms...), src+"/determined/env:cuda-abc123")

	stale := &staleTagRegistry{inner: memreg.New(memreg.Logger(log.New(io.Discard, "", 0))), tag: "cuda-abc123"}
	srv := httptest.NewServer(stale)
	defer srv.Close()
	dst := strings.TrimPrefix(srv.URL, "http://")
	other := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), dst+"/ngc/env:stale")

	_, err := testClient().Copy(context.Background(), src+"/determined/env@"+digest, []string{dst + "/ngc/env:cuda-abc123"})
	t.Logf("Copy: %v", err)
	if stale.served.Load() == 0 {
		t.Fatal("Copy never read the destination tag back")
	}
	if err == nil {
		t.Fatal("Copy succeeded although the destination resolves to another digest")
	}
	if !errors.Is(err, ErrVerify) {
		t.Errorf("errors.Is(err, ErrVerify) = false: %v", err)
	}
	if !strings.Contains(err.Error(), "resolves to "+other) {
		t.Errorf("error %q does not name the digest read back (%s)", err, other)
	}
}
