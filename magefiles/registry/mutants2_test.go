package registry

// More tests for mutants `go run magefile.go mutants` found alive in this
// package (docs/mutants.md), from the run of 2026-12-02 evening.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The race retry waits 200 ms at first (less when the client's own first
// wait is shorter), doubling up to 5 s: 7 waits between 8 pushes.
func TestTheRaceWaitsDoubleUpToFiveSeconds(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		initial time.Duration
		want    []time.Duration
	}{
		{time.Second, []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second, 5 * time.Second}},
		{10 * ms, []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms}},
	} {
		if got := raceDelays(tc.initial); !slices.Equal(got, tc.want) {
			t.Errorf("raceDelays(%s) = %v, want %v", tc.initial, got, tc.want)
		}
	}
}

// A race wait is half to all of its bound: the random part draws from
// [0, delay/2+1).
func TestARaceWaitIsHalfToAllOfItsBound(t *testing.T) {
	var asked time.Duration
	least := jitter(time.Second, func(k time.Duration) time.Duration { asked = k; return 0 })
	most := jitter(time.Second, func(k time.Duration) time.Duration { return k - 1 })
	if least != 500*time.Millisecond || most != time.Second || asked != 500*time.Millisecond+1 {
		t.Errorf("jitter(1s) between %s and %s drawing from [0, %s); want 500ms, 1s and 500.000001ms", least, most, asked)
	}
}

// The copy watchdog looks every twentieth of the timeout, at least every
// second and at most every 10 ms.
func TestTheWatchdogLooksEveryTwentiethOfTheTimeout(t *testing.T) {
	for timeout, want := range map[time.Duration]time.Duration{
		5 * time.Minute:        time.Second,
		time.Second:            50 * time.Millisecond,
		100 * time.Millisecond: 10 * time.Millisecond,
	} {
		if got := watchdogTick(timeout); got != want {
			t.Errorf("watchdogTick(%s) = %s, want %s", timeout, got, want)
		}
	}
}

// An error of an operation whose context ended names why it ended; one
// whose context is live is returned as it is.
func TestAnEndedOperationsErrorNamesTheCause(t *testing.T) {
	cause := errors.New("no progress from registry r for 1s")
	ctx, cancel := context.WithCancelCause(context.Background())
	err := errors.New("Get https://r/v2/: context canceled")
	if got := withCause(ctx, err); got != err {
		t.Errorf("live context: withCause = %v, want the error itself", got)
	}
	cancel(cause)
	if got := withCause(ctx, err); !errors.Is(got, cause) || !strings.Contains(got.Error(), err.Error()) {
		t.Errorf("ended context: withCause = %v, want it to wrap %q and keep %q", got, cause, err)
	}
}

// Verify of a single tag returns that tag's image.
func TestVerifyOfOneTagReturnsItsImage(t *testing.T) {
	host := newMemRegistry(t)
	d := pushIndex(t, buildIndex(t, twoPlatforms...), host+"/env:cpu-abc123")
	img, err := testClient().Verify(context.Background(), []string{host + "/env:cpu-abc123"}, d, twoPlatforms)
	if err != nil || img.Digest != d || img.Ref != host+"/env:cpu-abc123" || !slices.Equal(img.Platforms, twoPlatforms) {
		t.Errorf("Verify = %+v, %v; want %s at the tag with %v", img, err, d, twoPlatforms)
	}
}

// A second tag in a repository is a manifest PUT; when that PUT meets a
// write race, the image is pushed whole to it and the copy succeeds.
func TestARacedTagPutIsPushedWhole(t *testing.T) {
	src := newMemRegistry(t)
	dst := newRacyRegistry(t, 0)
	dst.refuseTag = "versioned"
	s := sharingImages(t, src+"/hub/env", 1, 2)[0]
	c := testClient()
	st, err := c.Copy(context.Background(), s, []string{dst.Host + "/ngc/env:hashed", dst.Host + "/ngc/env:versioned"})
	if err != nil {
		t.Fatalf("Copy with a raced tag PUT: %v", err)
	}
	refused, puts, heads := dst.counts()
	// A push (4 blob HEADs, a PUT), the refused tag PUT, then a whole push
	// of the tag (4 HEADs, a PUT).
	if refused != 1 || puts != 3 || heads != 8 || st.RacePushes != 0 {
		t.Errorf("refused %d, manifest PUTs %d, blob HEADs %d, RacePushes %d; want 1, 3, 8, 0", refused, puts, heads, st.RacePushes)
	}
	if _, err := c.Verify(context.Background(), []string{dst.Host + "/ngc/env:versioned"}, s[strings.Index(s, "@")+1:], nil); err != nil {
		t.Errorf("the raced tag: %v", err)
	}
}

// nestedIndex wraps an image in levels indexes, each the only child of the
// next.
func nestedIndex(t *testing.T, levels int) v1.ImageIndex {
	t.Helper()
	img := platformImage(t, "linux", "amd64", 1, nil)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	for range levels - 1 {
		idx = mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx,
			Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex}})
	}
	return idx
}

// Indexes nest up to five deep (the top one and four below it); a sixth
// level is refused as content no registry tool writes.
func TestIndexesNestUpToFiveDeep(t *testing.T) {
	host := newMemRegistry(t)
	for levels, ok := range map[int]bool{5: true, 6: false} {
		ref := host + "/env:nested"
		d := pushIndex(t, nestedIndex(t, levels), ref)
		img, err := testClient().Verify(context.Background(), []string{ref}, d, nil)
		switch {
		case ok && (err != nil || !slices.Equal(img.Platforms, []string{"linux/amd64"})):
			t.Errorf("%d levels: Verify = %v, %v; want linux/amd64", levels, img.Platforms, err)
		case !ok && (!errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "nested too deeply")):
			t.Errorf("%d levels: Verify err = %v, want ErrVerify: indexes nested too deeply", levels, err)
		}
	}
}

// answer is a RoundTripper that answers every request with status and a
// Retry-After.
type answer struct {
	status     int
	retryAfter string
	body       string
}

func (a answer) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{}
	if a.retryAfter != "" {
		h.Set("Retry-After", a.retryAfter)
	}
	return &http.Response{StatusCode: a.status, Status: http.StatusText(a.status), Header: h,
		Body: io.NopCloser(strings.NewReader(a.body)), ContentLength: int64(len(a.body)), Request: req}, nil
}

func roundTrip(t *testing.T, rt http.RoundTripper, ctx context.Context, header http.Header) (*http.Response, error) {
	t.Helper()
	req := (&http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "r.example", Path: "/v2/"}, Header: header}).WithContext(ctx)
	return rt.RoundTrip(req)
}

// A Retry-After of 0 asks for no wait: the answer goes on to ggcr's
// retries as it is, even when the operation's time is already up.
func TestARetryAfterOfZeroIsNoWait(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	resp, err := roundTrip(t, retryAfterWait{answer{status: http.StatusServiceUnavailable, retryAfter: "0"}}, ctx, nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("Retry-After 0: %v, %v; want the 503 itself", resp, err)
	}
}

// A Retry-After of exactly 2 minutes (the longest waited for) is waited
// for, until the operation ends; 121 s gives up at once.
func TestARetryAfterOfTwoMinutesIsWaitedFor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := roundTrip(t, retryAfterWait{answer{status: http.StatusTooManyRequests, retryAfter: "120"}}, ctx, nil)
	var gu *giveUpError
	if errors.As(err, &gu) || !errors.Is(err, context.Canceled) {
		t.Errorf("Retry-After 120 on an ended operation: %v, want the wait cut short by the cancellation", err)
	}
	_, err = roundTrip(t, retryAfterWait{answer{status: http.StatusTooManyRequests, retryAfter: "121"}}, context.Background(), nil)
	if !errors.As(err, &gu) {
		t.Errorf("Retry-After 121: %v, want giving up", err)
	}
}

// Credentials an error answer of status 400 repeats are scrubbed too, and
// the scrubbed answer does not claim the original length.
func TestAScrubbedAnswerOf400(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Bearer s3cr3t-token")
	body := `{"errors":[{"code":"DENIED","message":"bad token Bearer s3cr3t-token"}]}`
	resp, err := roundTrip(t, credentialScrub{answer{status: http.StatusBadRequest, body: body}}, context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(got), "s3cr3t") {
		t.Errorf("400 answer kept the credentials: %s", got)
	}
	if resp.ContentLength != -1 && resp.ContentLength != int64(len(got)) {
		t.Errorf("ContentLength %d for a body of %d bytes", resp.ContentLength, len(got))
	}
}

// A signature write the registry keeps refusing as racing gives up after
// raceAttempts writes, with the registry's refusal.
func TestAddSignaturesGivesUpOnPersistentRefusal(t *testing.T) {
	host := newMemRegistry(t)
	digest := pushIndex(t, buildIndex(t, twoPlatforms...), host+"/determined/env:base-abc123")
	repo, sigPuts := signatureRefusals(t, host, "MANIFEST_BLOB_UNKNOWN", func(int64) bool { return true })
	sig := Signature{Payload: []byte(`{"a":1}`), Signature: "c2ln"}
	err := testClient().AddSignatures(context.Background(), repo, digest, []Signature{sig})
	if err == nil || !strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") {
		t.Errorf("AddSignatures against a registry refusing every write: %v, want its MANIFEST_BLOB_UNKNOWN", err)
	}
	if n := sigPuts.Load(); n != raceAttempts {
		t.Errorf("%d signature manifest PUTs, want %d", n, raceAttempts)
	}
}

// A copy whose race wait is cut short by the end of the operation returns
// the registry's refusal and counts no repeated push.
func TestARaceWaitEndsWithTheOperation(t *testing.T) {
	src := newMemRegistry(t)
	dst := newRacyRegistry(t, 0)
	dst.refuseAll = true
	s := sharingImages(t, src+"/hub/env", 1, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dst.onRefuse = func() { time.AfterFunc(20*time.Millisecond, cancel) }
	// The first race wait is 100-200 ms (a client whose own first wait is
	// longer starts the race waits at 200 ms).
	st, err := testClient(WithRetry(6, time.Second)).Copy(ctx, s, []string{dst.Host + "/ngc/env:x"})
	if err == nil || !strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") {
		t.Errorf("Copy cancelled in a race wait: %v, want the refusal", err)
	}
	if _, puts, _ := dst.counts(); puts != 1 || st.RacePushes != 0 {
		t.Errorf("manifest PUTs %d, RacePushes %d; want 1 and 0", puts, st.RacePushes)
	}
}

// A copy whose source stops answering ends after the client's timeout
// without progress, and says so.
func TestACopyWithoutProgressEnds(t *testing.T) {
	src := newMemRegistry(t)
	s := sharingImages(t, src+"/hub/env", 1, 1)[0]
	target, err := url.Parse("http://" + src)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			<-r.Context().Done() // a blob download that never starts
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer stall.Close()
	dst := newMemRegistry(t)
	from := strings.TrimPrefix(stall.URL, "http://") + s[strings.Index(s, "/hub/env"):]
	c := testClient(WithTimeout(time.Second))
	_, err = c.Copy(context.Background(), from, []string{dst + "/ngc/env:x"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no progress from registry") {
		t.Errorf("Copy from a stalled source: %v, want no progress ... (context deadline exceeded)", err)
	}
	// A slow source that keeps answering (each blob after 150 ms, well
	// within the second) is not stopped, however long the copy takes.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			time.Sleep(150 * time.Millisecond)
		}
		rp.ServeHTTP(w, r)
	}))
	defer slow.Close()
	from = strings.TrimPrefix(slow.URL, "http://") + s[strings.Index(s, "/hub/env"):]
	if _, err := c.Copy(context.Background(), from, []string{dst + "/ngc/env:slow"}); err != nil {
		t.Errorf("Copy from a slow source: %v", err)
	}
}

// A child the registry cannot serve fails verification, naming the child:
// a nested index, or something that is neither image nor index.
func TestAChildTheRegistryCannotServeFailsVerification(t *testing.T) {
	host := newMemRegistry(t)
	inner := nestedIndex(t, 1)
	innerDigest := digestOf(t, inner)
	top := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: inner, Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex}})
	pushIndex(t, top, host+"/env:nested-index")
	// An index naming an artifact the registry does not hold.
	artifactDigest := "sha256:" + strings.Repeat("ab", 32)
	raw := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.example.artifact.v1+json","digest":"` + artifactDigest + `","size":2}]}`
	if err := remote.Put(mustRef(t, host+"/env:artifact"), rawManifest{raw, types.OCIImageIndex}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		child string
		want  string
	}{
		"nested index": {innerDigest, "reading child index " + innerDigest},
		"artifact":     {artifactDigest, "checking child " + artifactDigest},
	} {
		proxy := newFaultProxy(t, host, func(_ int64, r *http.Request) fault {
			if strings.HasSuffix(r.URL.Path, "/manifests/"+tc.child) {
				return fail404
			}
			return pass
		})
		_, err := testClient().Verify(context.Background(), []string{proxy.Host + "/env:" + strings.ReplaceAll(name, " ", "-")}, "", nil)
		if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s the registry does not serve: %v, want ErrVerify: %s", name, err, tc.want)
		}
	}
}

type rawManifest struct {
	body string
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return []byte(m.body), nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// A dial that fails is worth retrying whatever its cause; another network
// operation's failure only for the causes retryableNetErr knows.
func TestAFailedDialIsRetried(t *testing.T) {
	opaque := errors.New("something odd")
	if !retryableNetErr(&net.OpError{Op: "dial", Net: "tcp", Err: opaque}) {
		t.Error("a failed dial: not retried")
	}
	if retryableNetErr(&net.OpError{Op: "write", Net: "tcp", Err: opaque}) {
		t.Error("a write failing for an unknown reason: retried")
	}
}

// A registry that mounts a blob from another repository (POST ?mount=,
// 201) uploads nothing: the blob counts as skipped; a monolithic upload
// (POST ?digest=, 201) counts as uploaded; a refused mount (202, an upload
// session) counts as neither.
func TestMountedBlobsAreSkippedAndMonolithicUploadsUploaded(t *testing.T) {
	s := newUploadStats()
	post := func(query string, status int) {
		s.record(&http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/v2/ngc/env/blobs/uploads/", RawQuery: query}}, status)
	}
	post("mount=sha256:aaa&from=hub/env", http.StatusCreated)
	post("digest=sha256:bbb", http.StatusCreated)
	post("mount=sha256:ccc&from=hub/env", http.StatusAccepted)
	if st := s.snapshot(); st.BlobsSkipped != 1 || st.BlobsUploaded != 1 {
		t.Errorf("skipped %d, uploaded %d; want 1 and 1", st.BlobsSkipped, st.BlobsUploaded)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An upload body sent again (GetBody: a redirect, a retried connection)
// is counted again, and its GetBody's error comes through.
func TestAnUploadBodySentAgainIsCounted(t *testing.T) {
	stats := newUploadStats()
	var again error
	tr := &observeTransport{act: newActivity(), stats: stats, inner: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		rc, err := r.GetBody()
		if err != nil {
			again = err
		} else {
			_, _ = io.Copy(io.Discard, rc)
		}
		return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Header: http.Header{}}, nil
	})}
	req, err := http.NewRequest(http.MethodPut, "http://127.0.0.1/v2/ngc/env/blobs/uploads/u1?digest=sha256:aaa", strings.NewReader("0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if n := stats.bytes.Load(); n != 20 {
		t.Errorf("%d bytes counted for a 10-byte body sent twice, want 20", n)
	}
	boom := errors.New("body gone")
	req.GetBody = func() (io.ReadCloser, error) { return nil, boom }
	req.Body = io.NopCloser(strings.NewReader("x"))
	if _, err := tr.RoundTrip(req); err != nil || !errors.Is(again, boom) {
		t.Errorf("GetBody failing: RoundTrip %v, GetBody's error %v; want %v", err, again, boom)
	}
}

// A read of no bytes is no progress.
func TestAReadOfNothingIsNoProgress(t *testing.T) {
	act := &activity{}
	b := act.body(io.NopCloser(strings.NewReader("")))
	if _, err := b.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("read: %v", err)
	}
	if act.last.Load() != 0 {
		t.Error("an empty read counted as progress")
	}
}
