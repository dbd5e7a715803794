package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// raceBody is what the distribution registry answered to a manifest PUT that
// met a concurrent upload of one of its blobs (seen against Debian's
// docker-registry; magefiles/e2e TestParallelCopiesIntoOneRepository
// reproduces it there).
func raceBody(d string) string {
	return `{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},` +
		`{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"` + d + `"}]}`
}

// racyRegistry stands in front of ggcr's in-memory registry and behaves like
// the distribution registry when writes race: while a blob upload commits
// (held for up to hold), a manifest PUT in the same repository that references that
// blob is refused with raceBody. refuseFirst refuses the first refuseFirst
// manifest PUTs in any case; refuseAll refuses every manifest PUT.
type racyRegistry struct {
	Host        string
	hold        time.Duration
	refuseFirst int
	refuseAll   bool
	refuseTag   string // the first manifest PUT of this tag is refused
	onRefuse    func() // called (in the handler) on each refusal
	rp          *httputil.ReverseProxy

	mu         sync.Mutex
	committing map[string]int // repo + " " + digest -> uploads committing
	refused    int
	manifests  int // manifest PUTs seen
	heads      int // blob HEADs seen
}

func newRacyRegistry(t *testing.T, hold time.Duration) *racyRegistry {
	t.Helper()
	u, err := url.Parse("http://" + newMemRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	r := &racyRegistry{hold: hold, rp: httputil.NewSingleHostReverseProxy(u), committing: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// repoPart returns the repository of a /v2/<repo>/(blobs|manifests)/... path.
func repoPart(path, kind string) string {
	p := strings.TrimPrefix(path, "/v2/")
	if i := strings.Index(p, "/"+kind+"/"); i >= 0 {
		return p[:i]
	}
	return ""
}

func (r *racyRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/blobs/sha256:"):
		r.mu.Lock()
		r.heads++
		r.mu.Unlock()
	case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/"):
		key := repoPart(req.URL.Path, "blobs") + " " + req.URL.Query().Get("digest")
		r.mu.Lock()
		r.committing[key]++
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.committing[key]--
			r.mu.Unlock()
		}()
		if r.hold > 0 {
			time.Sleep(rand.N(r.hold)) // uploads of one blob end at different times
		}
	case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/"):
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		repo := repoPart(req.URL.Path, "manifests")
		var m struct {
			Config    v1.Descriptor   `json:"config"`
			Layers    []v1.Descriptor `json:"layers"`
			Manifests []v1.Descriptor `json:"manifests"`
		}
		_ = json.Unmarshal(body, &m)
		r.mu.Lock()
		r.manifests++
		busy := ""
		for _, d := range append(append([]v1.Descriptor{m.Config}, m.Layers...), m.Manifests...) {
			if r.committing[repo+" "+d.Digest.String()] > 0 {
				busy = d.Digest.String()
			}
		}
		if busy == "" && (r.refuseAll || r.manifests <= r.refuseFirst) {
			busy = m.Config.Digest.String()
		}
		if busy == "" && r.refuseTag != "" && strings.HasSuffix(req.URL.Path, "/manifests/"+r.refuseTag) {
			busy, r.refuseTag = m.Config.Digest.String(), ""
		}
		if busy != "" {
			r.refused++
		}
		onRefuse := r.onRefuse
		r.mu.Unlock()
		if busy != "" && onRefuse != nil {
			onRefuse()
		}
		if busy != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, raceBody(busy))
			return
		}
	}
	r.rp.ServeHTTP(w, req)
}

func (r *racyRegistry) counts() (refused, manifests, heads int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused, r.manifests, r.heads
}

// sharingImages pushes n images to repo that share shared layers and have one
// layer of their own each, and returns repo@digest of each.
func sharingImages(t *testing.T, repo string, n, shared int) []string {
	t.Helper()
	var base []v1.Layer
	for range shared {
		l, err := random.Layer(64<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, l)
	}
	var out []string
	for i := range n {
		own, err := random.Layer(8<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, append(append([]v1.Layer(nil), base...), own)...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, repo+"@"+pushImage(t, img, fmt.Sprintf("%s:img-%d", repo, i)))
	}
	return out
}

// TestParallelCopiesSurviveWriteRaces copies many layer-sharing images into
// one repository at once, many times, against a registry that refuses
// manifests whose blobs are being committed by another upload, as the
// distribution registry does. Every copy must succeed and read back. Each
// round copies into a fresh registry (the in-memory registry keeps blobs
// for all repositories: a second round into the same one uploads nothing,
// so nothing races), and rounds go on past minRounds until minRaces
// manifests were refused, up to maxRounds: races are a matter of timing.
func TestParallelCopiesSurviveWriteRaces(t *testing.T) {
	src := newMemRegistry(t)
	srcs := sharingImages(t, src+"/hub/env", 8, 3)
	c := testClient()
	const minRounds, minRaces, maxRounds = 20, 20, 200
	races, failures, rounds, refused, puts := 0, 0, 0, 0, 0
	for ; rounds < maxRounds && (rounds < minRounds || refused < minRaces); rounds++ {
		dst := newRacyRegistry(t, 50*time.Millisecond)
		repo := dst.Host + "/ngc/env"
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, s := range srcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tag := fmt.Sprintf("%s:img-%d", repo, i)
				st, err := c.Copy(context.Background(), s, []string{tag})
				if err == nil {
					_, err = c.Verify(context.Background(), []string{tag}, s[strings.Index(s, "@")+1:], nil)
				}
				mu.Lock()
				defer mu.Unlock()
				races += st.RacePushes
				if err != nil {
					failures++
					t.Errorf("round %d, %s -> %s: %v", rounds, s, tag, err)
				}
			}()
		}
		wg.Wait()
		r, p, _ := dst.counts()
		refused, puts = refused+r, puts+p
	}
	t.Logf("%d copies in %d rounds, %d at once: %d manifest PUTs, %d refused as racing, %d pushes repeated, %d failures",
		rounds*len(srcs), rounds, len(srcs), puts, refused, races, failures)
	if refused < minRaces {
		t.Fatalf("%d write races in %d rounds, want at least %d: the test proves too little; raise the hold or the number of images", refused, rounds, minRaces)
	}
	if races < refused {
		t.Errorf("%d refusals but only %d repeated pushes", refused, races)
	}
}

// TestCopyPushesAgainAfterRace: a refused manifest is pushed again with a
// fresh check of every blob (so blobs gone missing are uploaded again).
func TestCopyPushesAgainAfterRace(t *testing.T) {
	src := newMemRegistry(t)
	dst := newRacyRegistry(t, 0)
	dst.refuseFirst = 2
	s := sharingImages(t, src+"/hub/env", 1, 2)[0]
	st, err := testClient().Copy(context.Background(), s, []string{dst.Host + "/ngc/env:x"})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	refused, puts, heads := dst.counts()
	if st.RacePushes != 2 || refused != 2 || puts != 3 {
		t.Errorf("RacePushes %d, refused %d, manifest PUTs %d; want 2, 2, 3", st.RacePushes, refused, puts)
	}
	// The pushes again find the blobs the first uploaded: they were
	// uploaded, not skipped.
	if st.BlobsUploaded != 4 || st.BlobsSkipped != 0 {
		t.Errorf("blobs uploaded %d, skipped %d; want 4 and 0", st.BlobsUploaded, st.BlobsSkipped)
	}
	// 4 blobs (config + 3 layers) checked by each of the 3 pushes.
	if heads < 3*4 {
		t.Errorf("%d blob HEADs, want at least 12: every push must check every blob again", heads)
	}
}

// TestCopyGivesUpOnPersistentRefusal: a registry that keeps refusing fails
// the copy after raceAttempts pushes, with the registry's error codes.
func TestCopyGivesUpOnPersistentRefusal(t *testing.T) {
	src := newMemRegistry(t)
	dst := newRacyRegistry(t, 0)
	dst.refuseAll = true
	s := sharingImages(t, src+"/hub/env", 1, 1)[0]
	st, err := testClient().Copy(context.Background(), s, []string{dst.Host + "/ngc/env:x"})
	var te *transport.Error
	if err == nil || !errors.As(err, &te) || !strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") ||
		!strings.Contains(err.Error(), fmt.Sprintf("after %d pushes", raceAttempts)) {
		t.Fatalf("err = %v, want the registry's MANIFEST_BLOB_UNKNOWN after %d pushes", err, raceAttempts)
	}
	if _, puts, _ := dst.counts(); puts != raceAttempts || st.RacePushes != raceAttempts-1 {
		t.Errorf("%d manifest PUTs, RacePushes %d; want %d, %d", puts, st.RacePushes, raceAttempts, raceAttempts-1)
	}
}

func TestWriteRace(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&transport.Error{Errors: []transport.Diagnostic{{Code: transport.ManifestBlobUnknownErrorCode}}}, true},
		{fmt.Errorf("wrapped: %w", &transport.Error{Errors: []transport.Diagnostic{{Code: transport.DigestInvalidErrorCode}}}), true},
		{&transport.Error{Errors: []transport.Diagnostic{{Code: transport.BlobUploadUnknownErrorCode}}}, true},
		{&transport.Error{Errors: []transport.Diagnostic{{Code: transport.ManifestInvalidErrorCode}}}, false},
		{&transport.Error{Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, false},
		{&transport.Error{StatusCode: http.StatusBadRequest}, false},
		{errors.New("DIGEST_INVALID in a plain string"), false},
	} {
		if got := writeRace(c.err); got != c.want {
			t.Errorf("writeRace(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestCopyTagsOtherDestinationsOfARepositoryByPut: the second tag of the
// same repository is one manifest PUT, not a second push that checks every
// blob again; a tag in another repository gets a push of its own.
func TestCopyTagsOtherDestinationsOfARepositoryByPut(t *testing.T) {
	src := newMemRegistry(t)
	dst := newRacyRegistry(t, 0)
	s := sharingImages(t, src+"/hub/env", 1, 2)[0]
	c := testClient()
	if _, err := c.Copy(context.Background(), s, []string{dst.Host + "/ngc/env:hashed", dst.Host + "/ngc/env:versioned"}); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	_, puts, heads := dst.counts()
	// 4 blobs (config + 3 layers), checked once; two manifest PUTs.
	if puts != 2 || heads != 4 {
		t.Errorf("manifest PUTs %d, blob HEADs %d; want 2 and 4 (one push, then a PUT)", puts, heads)
	}
	if _, err := c.Copy(context.Background(), s, []string{dst.Host + "/ngc/other:a", dst.Host + "/ngc/env2:b"}); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if _, puts2, heads2 := dst.counts(); puts2-puts != 2 || heads2-heads != 8 {
		t.Errorf("two repositories: manifest PUTs %d, blob HEADs %d; want 2 and 8 (a push each)", puts2-puts, heads2-heads)
	}
	for _, tag := range []string{"env:hashed", "env:versioned", "other:a", "env2:b"} {
		if _, err := c.Verify(context.Background(), []string{dst.Host + "/ngc/" + tag}, s[strings.Index(s, "@")+1:], nil); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
	}
}
