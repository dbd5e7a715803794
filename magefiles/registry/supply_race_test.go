package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Jobs that share a base sign it at the same time; the distribution
// registry then may refuse a signature manifest as racing (DIGEST_INVALID).
// AddSignatures reads and writes again, and the signature arrives.
func TestAddSignaturesAgainAfterAWriteRace(t *testing.T) {
	host := newMemRegistry(t)
	digest := pushIndex(t, buildIndex(t, twoPlatforms...), host+"/determined/env:base-abc123")
	repo, sigPuts := signatureRefusals(t, host, "DIGEST_INVALID", func(n int64) bool { return n == 1 })
	sig := Signature{Payload: []byte(`{"a":1}`), Signature: "c2ln"}
	if err := testClient().AddSignatures(context.Background(), repo, digest, []Signature{sig}); err != nil {
		t.Fatalf("AddSignatures after one racing refusal: %v", err)
	}
	if n := sigPuts.Load(); n != 2 {
		t.Errorf("%d signature manifest PUTs, want 2 (refused, then written)", n)
	}
	got, err := testClient().Signatures(context.Background(), repo, digest)
	if err != nil || len(got) != 1 {
		t.Errorf("signatures %v %v, want the one added", got, err)
	}
}

// signatureRefusals stands a proxy in front of the registry at host that
// counts signature manifest PUTs and refuses the n-th (from 1) with code
// when refuse(n); it returns the proxied determined/env repository and
// the count.
func signatureRefusals(t *testing.T, host, code string, refuse func(n int64) bool) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse("http://" + host)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	puts := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".sig") && refuse(puts.Add(1)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"refused as racing"}]}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/determined/env", puts
}
