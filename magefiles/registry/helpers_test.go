package registry

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// anonymous is a keychain that never finds credentials, so tests don't read
// the developer's docker config.
var anonymous = authn.NewMultiKeychain()

// newMemRegistry starts ggcr's in-memory registry on 127.0.0.1 and returns
// its host:port.
func newMemRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(memreg.New(memreg.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// platformImage is a random image whose config says os/arch and carries labels.
func platformImage(t *testing.T, os, arch string, layers int64, labels map[string]string) v1.Image {
	t.Helper()
	img, err := random.Image(700, layers)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	cf.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// buildIndex makes an OCI index with one image per platform ("os/arch") and,
// like buildx, an attestation manifest (platform unknown/unknown) for the
// first one.
func buildIndex(t *testing.T, platforms ...string) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	var firstDigest v1.Hash
	for i, p := range platforms {
		os, arch, _ := strings.Cut(p, "/")
		img := platformImage(t, os, arch, 2, map[string]string{"arch": arch, "org.opencontainers.image.version": "1.2.3"})
		if i == 0 {
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			firstDigest = d
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}})
	}
	att, err := random.Image(200, 1)
	if err != nil {
		t.Fatal(err)
	}
	adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
		Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{
			"vnd.docker.reference.type":   "attestation-manifest",
			"vnd.docker.reference.digest": firstDigest.String(),
		},
	}})
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// pushIndex writes idx to every ref directly (no faults, default ggcr options).
func pushIndex(t *testing.T, idx v1.ImageIndex, refs ...string) string {
	t.Helper()
	for _, r := range refs {
		if err := remote.WriteIndex(mustRef(t, r), idx); err != nil {
			t.Fatalf("pushing %s: %v", r, err)
		}
	}
	return digestOf(t, idx)
}

func pushImage(t *testing.T, img v1.Image, refs ...string) string {
	t.Helper()
	for _, r := range refs {
		if err := remote.Write(mustRef(t, r), img); err != nil {
			t.Fatalf("pushing %s: %v", r, err)
		}
	}
	return digestOf(t, img)
}

// fault is what the fault proxy does to one request.
type fault int

const (
	pass fault = iota
	fail429
	fail500
	fail503
	fail404
	drop // hijack the connection and close it without answering
)

func (f fault) String() string {
	return [...]string{"pass", "429", "500", "503", "404", "drop"}[f]
}

// faultProxy is a reverse proxy in front of a registry that injects faults
// according to a deterministic schedule over the request sequence number.
type faultProxy struct {
	Host     string
	schedule func(n int64, r *http.Request) fault
	rp       *httputil.ReverseProxy

	requests atomic.Int64
	injected atomic.Int64

	mu       sync.Mutex
	byKind   map[fault]int
	pending  map[string]int // faults per request key not yet followed by an answered retry
	survived int
	seen     []string // "METHOD /path" of every request
}

func newFaultProxy(t *testing.T, target string, schedule func(n int64, r *http.Request) fault) *faultProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rp.Transport = tr
	p := &faultProxy{schedule: schedule, rp: rp, byKind: map[fault]int{}, pending: map[string]int{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

var uploadID = regexp.MustCompile(`/blobs/uploads/[^/]+$`)

// requestKey identifies "the same request" across retries; upload sessions get
// new ids when an upload is restarted, so those are folded together.
func requestKey(r *http.Request) string {
	return r.Method + " " + uploadID.ReplaceAllString(r.URL.Path, "/blobs/uploads/*")
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.requests.Add(1)
	key := requestKey(r)
	p.mu.Lock()
	p.seen = append(p.seen, r.Method+" "+r.URL.Path)
	p.mu.Unlock()
	f := p.schedule(n, r)
	if f != pass {
		p.injected.Add(1)
		p.mu.Lock()
		p.byKind[f]++
		p.pending[key]++
		p.mu.Unlock()
		switch f {
		case drop:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(fmt.Sprintf("hijack: %v", err))
			}
			conn.Close()
		case fail429:
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`)
		case fail404:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"injected"}]}`)
		case fail500:
			http.Error(w, "injected internal error", http.StatusInternalServerError)
		case fail503:
			http.Error(w, "injected unavailable", http.StatusServiceUnavailable)
		}
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	p.rp.ServeHTTP(sw, r)
	if sw.status != 0 && !retryableStatus(sw.status) {
		p.mu.Lock()
		p.survived += p.pending[key]
		p.pending[key] = 0
		p.mu.Unlock()
	}
}

// Faults returns how many faults were injected and how many of those were
// followed by a successful (answered) retry of the same request.
func (p *faultProxy) Faults() (injected, survived int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.injected.Load()), p.survived
}

// count returns how many requests had the method and a path containing sub.
func (p *faultProxy) count(method, sub string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.seen {
		m, path, _ := strings.Cut(s, " ")
		if m == method && strings.Contains(path, sub) {
			n++
		}
	}
	return n
}

func (p *faultProxy) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for k, v := range p.byKind {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d requests, by kind: %s", p.requests.Load(), strings.Join(parts, " "))
}

func logFaults(t *testing.T, proxies ...*faultProxy) (injected, survived int) {
	t.Helper()
	return tallyFaults(t, proxies...)
}

// logCaught is logFaults for tests where the operation must fail: a fault
// counts as caught when no retry got past it and err, the operation's error,
// names the registry it was injected at. Returns how many were injected.
func logCaught(t *testing.T, err error, proxies ...*faultProxy) (injected int) {
	t.Helper()
	caught := 0
	for _, p := range proxies {
		i, s := p.Faults()
		injected += i
		if err != nil && strings.Contains(err.Error(), p.Host) {
			caught += i - s
		}
		t.Logf("proxy %s: %s", p.Host, p.summary())
	}
	t.Logf("faults injected: %d, caught as a clear failure (expected): %d", injected, caught)
	return injected
}

func tallyFaults(t *testing.T, proxies ...*faultProxy) (injected, survived int) {
	t.Helper()
	for _, p := range proxies {
		i, s := p.Faults()
		injected += i
		survived += s
		t.Logf("proxy %s: %s", p.Host, p.summary())
	}
	t.Logf("faults injected: %d, survived: %d", injected, survived)
	return injected, survived
}

// bursty injects 429 then 503 back to back, a 500 and a dropped connection in
// every 16 requests (25%).
func bursty(n int64, _ *http.Request) fault {
	switch n % 16 {
	case 3:
		return fail429
	case 4:
		return fail503
	case 9:
		return fail500
	case 13:
		return drop
	}
	return pass
}

// recordingTransport records every request and answers none of them.
type recordingTransport struct {
	mu   sync.Mutex
	reqs []string
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, req.Method+" "+req.URL.String())
	rt.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, fmt.Errorf("recording transport: not sending %s", req.URL.Redacted())
}

func (rt *recordingTransport) requests() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.reqs...)
}
