package publish

// More tests for mutants `go run magefile.go mutants` found alive in this
// package (docs/mutants.md), from the run of 2026-12-02 evening.

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
)

// The lease times are the documented ones (docs/publishing.md): a lease
// lasts 5 minutes, is renewed every minute, read back after 3 s, and a
// waiter looks again every 15 s. Injected times win.
func TestTheDefaultLeaseTimesAreTheDocumentedOnes(t *testing.T) {
	want := leaseTimes{ttl: 5 * time.Minute, renew: time.Minute, settle: 3 * time.Second, poll: 15 * time.Second}
	if got := leaseTimesOr(nil); *got != want {
		t.Errorf("default lease times %+v, want %+v", *got, want)
	}
	if got := leaseTimesOr(testLease); got != testLease {
		t.Errorf("injected lease times %+v replaced by %+v", *testLease, *got)
	}
}

// A PUBLISH_REPORT whose directory cannot be made is refused before any
// build, by its own name.
func TestAPublishReportThatCannotBeWrittenIsRefused(t *testing.T) {
	h := newHarness(t)
	h.env["PUBLISH_REPORT"] = "/proc/envs-report/publish-report.json"
	_, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true})
	if err == nil || !strings.Contains(err.Error(), `PUBLISH_REPORT="/proc/envs-report/publish-report.json": the directory /proc/envs-report cannot receive the file`) {
		t.Errorf("publish with an unwritable PUBLISH_REPORT: %v", err)
	}
	if strings.Contains(err.Error(), "ARTIFACTS_DIR") || h.buildCount() != 0 {
		t.Errorf("error %v, %d builds: want PUBLISH_REPORT alone named, nothing built", err, h.buildCount())
	}
}

// A failed image is printed as an ERR line naming it, as it fails; a
// published one is not.
func TestAFailedImageIsPrintedAsItFails(t *testing.T) {
	h := newHarness(t)
	h.fail["tf1-cpu"] = true
	_, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true})
	if err == nil {
		t.Fatal("publish with a failing build: no error")
	}
	var errLines []string
	for _, l := range strings.Split(h.err.String(), "\n") {
		if strings.HasPrefix(l, "ERR ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || !strings.HasPrefix(errLines[0], "ERR tf1-cpu: ") {
		t.Errorf("ERR lines %q, want one for tf1-cpu (its base cpu-py-37-base was published)", errLines)
	}
}

// repoOf strips a tag and nothing else: a registry's port is no tag.
func TestRepoOfStripsOnlyATag(t *testing.T) {
	for ref, want := range map[string]string{
		"host:5000/org/repo:tag": "host:5000/org/repo",
		"host:5000/org/repo":     "host:5000/org/repo",
		"org/repo:tag":           "org/repo",
		"repo":                   "repo",
	} {
		if got := repoOf(ref); got != want {
			t.Errorf("repoOf(%q) = %q, want %q", ref, got, want)
		}
	}
}

// lookupFails is the registry with a Lookup that fails.
type lookupFails struct{ *registry.Client }

func (lookupFails) Lookup(context.Context, []string) (registry.Found, error) {
	return registry.Found{}, errors.New("registry down")
}

func baseSpec(t *testing.T, h *harness) (*build.Env, plan.Spec) {
	t.Helper()
	e := h.buildEnv()
	specs, err := plan.Plan(e.Settings, plan.Request{Images: []string{"cpu-py-37-base"}, Mode: plan.Publish})
	if err != nil || len(specs) != 1 {
		t.Fatalf("plan: %v, %d specs", err, len(specs))
	}
	return e, specs[0]
}

// A lease holder looks at the tags once more before it builds: it keeps
// what another publish pushed meanwhile (pointing the other tags at it
// when only the hashed one is there) and builds when nothing is there or
// the look fails.
func TestTheLeaseHolderKeepsWhatAnotherPublishPushed(t *testing.T) {
	h := newHarness(t)
	e, sp := baseSpec(t, h)
	ctx := context.Background()
	tags := &countTags{Client: h.client()}
	p := &publisher{e: e, reg: tags}
	if d, r := p.keepNow(ctx, sp); d != "" || r != Built {
		t.Errorf("nothing pushed: keepNow = %q, %s; want a build", d, r)
	}
	pushed, err := h.build(ctx, sp) // the hashed tag only, as a publish build pushes
	if err != nil {
		t.Fatal(err)
	}
	if d, r := p.keepNow(ctx, sp); d != pushed || r != Reused {
		t.Errorf("hashed tag pushed: keepNow = %q, %s; want %s, %s", d, r, pushed, Reused)
	}
	if d, r := p.keepNow(ctx, sp); d != pushed || r != UpToDate {
		t.Errorf("after the re-tag: keepNow = %q, %s; want %s, %s", d, r, pushed, UpToDate)
	}
	if n := tags.n.Load(); n != 1 {
		t.Errorf("%d re-tags, want 1 (the reuse; nothing to point when up to date)", n)
	}
	p.reg = lookupFails{h.client()}
	if d, r := p.keepNow(ctx, sp); d != "" || r != Built {
		t.Errorf("look-up failing: keepNow = %q, %s; want a build", d, r)
	}
}

// leaseWrites is a leaser whose writes fail when fail is set.
type leaseWrites struct {
	fail   bool
	writes atomic.Int64
}

func (l *leaseWrites) ReadLease(context.Context, string) (registry.Lease, bool, error) {
	return registry.Lease{}, false, nil
}

func (l *leaseWrites) WriteLease(context.Context, string, registry.Lease) error {
	l.writes.Add(1)
	if l.fail {
		return errors.New("write refused")
	}
	return nil
}

// A holder renews its lease while it builds and gives it up after; a
// renewal or give-up the registry refuses is a warning, not a failure.
func TestALeaseTheRegistryRefusesIsAWarning(t *testing.T) {
	for _, fail := range []bool{false, true} {
		h := newHarness(t)
		e, sp := baseSpec(t, h)
		l := &leaseWrites{fail: fail}
		// The build lasts until the lease was renewed once (at most 5 s),
		// however slowly a loaded machine schedules the renewal.
		p := &publisher{e: e, reg: h.client(), lease: &leaseTimes{ttl: time.Second, renew: 5 * time.Millisecond, settle: time.Millisecond, poll: time.Millisecond},
			build: func(ctx context.Context, sp plan.Spec) (string, error) {
				for deadline := time.Now().Add(5 * time.Second); l.writes.Load() == 0 && time.Now().Before(deadline); {
					_ = sleep(ctx, 5*time.Millisecond)
				}
				return "sha256:built", nil
			}}
		d, r, err := p.buildHolding(context.Background(), sp, l, "lease-tag", registry.Lease{Holder: "me"})
		if d != "sha256:built" || r != Built || err != nil {
			t.Errorf("fail=%v: buildHolding = %q, %s, %v; want the build's digest", fail, d, r, err)
		}
		log := h.err.String()
		renewWarned, releaseWarned := strings.Contains(log, "could not renew the build lease lease-tag"), strings.Contains(log, "could not give up the build lease lease-tag")
		if renewWarned != fail || releaseWarned != fail || l.writes.Load() < 2 {
			t.Errorf("fail=%v: %d lease writes, warned of renewal %v, of give-up %v; want renewals and a give-up, warned only when refused:\n%s",
				fail, l.writes.Load(), renewWarned, releaseWarned, log)
		}
	}
}

// The real build step runs the spec's argv and reads the digest from the
// metadata file this build wrote: a file an earlier run left is removed
// first, a failed build returns its error, and a plan without a metadata
// file is refused. (The argv here is a script standing in for docker
// buildx; the e2e suite runs the real one.)
func TestBuildAndPushReadsThisBuildsDigest(t *testing.T) {
	h := newHarness(t)
	e, sp := baseSpec(t, h)
	p := &publisher{e: e}
	dir := t.TempDir()
	sp.MetadataFile = filepath.Join(dir, "metadata.json")
	script := filepath.Join(dir, "fake-buildx")
	// It refuses to run over a metadata file that is still there, as a
	// check that buildAndPush removed it.
	if err := os.WriteFile(script, []byte("#!/bin/sh\nif [ -e \"$1\" ]; then echo stale metadata file >&2; exit 3; fi\n"+
		"[ \"$2\" = fail ] && exit 1\nprintf '{\"containerimage.digest\":\"%s\"}' \"$2\" > \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := "sha256:" + strings.Repeat("1", 64)
	sp.Argv = []string{script, sp.MetadataFile, want}
	ctx := context.Background()
	for _, stale := range []bool{false, true} {
		if stale {
			if err := os.WriteFile(sp.MetadataFile, []byte(`{"containerimage.digest":"sha256:`+strings.Repeat("0", 64)+`"}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if d, err := p.buildAndPush(ctx, sp); d != want || err != nil {
			t.Errorf("stale file %v: buildAndPush = %q, %v; want %s", stale, d, err, want)
		}
	}
	sp.Argv = []string{script, sp.MetadataFile, "fail"}
	if d, err := p.buildAndPush(ctx, sp); err == nil || d != "" || !strings.Contains(err.Error(), "building cpu-py-37-base") {
		t.Errorf("failed build: buildAndPush = %q, %v; want its error", d, err)
	}
	sp.MetadataFile = ""
	if _, err := p.buildAndPush(ctx, sp); err == nil || !strings.Contains(err.Error(), "no --metadata-file") {
		t.Errorf("no metadata file: %v", err)
	}
}

// countTags counts the registry's re-tags.
type countTags struct {
	*registry.Client
	n atomic.Int64
}

func (c *countTags) Tag(ctx context.Context, src string, dst []string) error {
	c.n.Add(1)
	return c.Client.Tag(ctx, src, dst)
}

// An image found up to date is kept as it is, at Docker Hub and at NGC:
// no re-tag, no "reused" line.
func TestAnUpToDateImageIsNotRetagged(t *testing.T) {
	h := newHarness(t)
	o := Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true}
	if _, err := h.run(context.Background(), h.client(), o); err != nil {
		t.Fatal(err)
	}
	tags := &countTags{Client: h.client()}
	rep, err := h.run(context.Background(), tags, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, ir := range rep.Images {
		if ir.Result != UpToDate {
			t.Errorf("second run: %s %s, want %s", ir.Name, ir.Result, UpToDate)
		}
	}
	if n := tags.n.Load(); n != 0 || strings.Contains(h.err.String(), "reused:") || !strings.Contains(h.err.String(), "tf2-cpu on NGC:") {
		t.Errorf("second run: %d re-tags; log:\n%s", n, h.err.String())
	}
}

// barrierLookups holds every Lookup until n are in flight (or a timeout
// passes), and records how many there were at once.
type barrierLookups struct {
	*registry.Client
	n       int
	mu      sync.Mutex
	waiting int
	most    int
	tags    []string // of each look-up, in order
	all     chan struct{}
}

func (b *barrierLookups) Lookup(ctx context.Context, tags []string) (registry.Found, error) {
	b.mu.Lock()
	b.waiting++
	b.most = max(b.most, b.waiting)
	b.tags = append(b.tags, strings.Join(tags, " "))
	if b.waiting == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(3 * time.Second):
	}
	return b.Client.Lookup(ctx, tags)
}

// The look-ups of every image's tags, Docker Hub and NGC, are in flight at
// once before anything is decided (prefetch): none waits for another
// image's.
func TestEveryLookupIsInFlightAtOnce(t *testing.T) {
	h := newHarness(t)
	// cpu-py-38-base at Docker Hub, tf2-cpu at Docker Hub and at NGC.
	b := &barrierLookups{Client: h.client(), n: 3, all: make(chan struct{})}
	if _, err := h.run(context.Background(), b, Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true}); err != nil {
		t.Fatal(err)
	}
	hub, ngc := tagsOf(t, h, "tf2-cpu")
	base, _ := tagsOf(t, h, "cpu-py-38-base")
	want := []string{strings.Join(base.List(), " "), strings.Join(hub.List(), " "), strings.Join(ngc.List(), " ")}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(b.tags))
	if b.most != 3 || !slices.Equal(got, want) {
		t.Errorf("at most %d look-ups in flight at once, of %q; want all 3, of %q", b.most, got, want)
	}
}

func TestSplitBasesReadsWhatJoinBasesWrote(t *testing.T) {
	bases := map[string]string{"ubuntu:20.04": "sha256:a", "nvidia/cuda:11.3": "sha256:b"}
	if got := splitBases(joinBases(bases)); !maps.Equal(got, bases) {
		t.Errorf("splitBases(joinBases(%v)) = %v", bases, got)
	}
	if got := splitBases("@sha256:a noat ubuntu@sha256:b"); !maps.Equal(got, map[string]string{"ubuntu": "sha256:b"}) {
		t.Errorf("splitBases with a field without a reference = %v, want only ubuntu", got)
	}
}

// An attestation names the platform image it attests by the index's
// reference annotation or by its own subject (either may be missing); when
// it has both they must agree.
func TestAnAttestationsPlatformComesFromEitherItsReferenceOrItsSubject(t *testing.T) {
	md := "sha256:" + strings.Repeat("1", 64)
	other := "sha256:" + strings.Repeat("2", 64)
	s := registry.Supply{Digest: "sha256:idx", Platforms: map[string]string{"linux/amd64": md}}
	w := supplyWant{Image: "tf2-cpu", Platforms: []string{"linux/amd64"}}
	for _, tc := range []struct {
		name             string
		refDigest, subj  string
		wantNoPlatform   bool
		wantDisagreement bool
	}{
		{name: "reference only", refDigest: md},
		{name: "subject only", subj: md},
		{name: "both, agreeing", refDigest: md, subj: md},
		{name: "both, disagreeing", refDigest: md, subj: other, wantDisagreement: true},
		{name: "neither", wantNoPlatform: true},
	} {
		s.Attestations = []registry.Attestation{{Digest: "sha256:att", RefDigest: tc.refDigest, Subject: tc.subj}}
		err := checkSupply(s, nil, sign.Verifier{}, "sha256:idx", w)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		noPlatform := strings.Contains(msg, "which is no platform image of the index")
		disagreement := strings.Contains(msg, "has subject "+other+" but the index says it attests "+md)
		unattested := strings.Contains(msg, "has no attestation")
		if noPlatform != tc.wantNoPlatform || disagreement != tc.wantDisagreement || unattested != (tc.wantNoPlatform || tc.wantDisagreement) {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
}

// decide keeps an image whose hashed tag holds the planned inputs and
// platforms (pointing the other tags at it), else one the versioned tag
// holds (pointing the hashed tag at it), and says why it builds otherwise.
func TestDecideKeepsTheHashedTagElseTheVersioned(t *testing.T) {
	h := newHarness(t)
	_, sp := baseSpec(t, h)
	tags := sp.Tags.List()
	good := registry.Image{Labels: map[string]string{plan.InputsLabel: sp.InputsDigest}, Platforms: sp.Platforms}
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	found := func(digests map[int]string, images map[string]registry.Image) registry.Found {
		f := registry.Found{Digests: make([]string, len(tags)), Images: images}
		for i, d := range digests {
			f.Digests[i] = d
		}
		return f
	}
	for _, tc := range []struct {
		name   string
		f      registry.Found
		digest string
		result Result
		retag  []string
		why    string
	}{
		{"both tags hold it", found(map[int]string{0: a, 1: a}, map[string]registry.Image{a: good}), a, UpToDate, nil, ""},
		{"hashed only", found(map[int]string{0: a}, map[string]registry.Image{a: good}), a, Reused, tags[1:], ""},
		{"versioned only", found(map[int]string{1: b}, map[string]registry.Image{b: good}), b, Reused, tags[:1], ""},
		{"no inputs label", found(map[int]string{0: a, 1: a}, map[string]registry.Image{a: {Platforms: sp.Platforms}}), "", "", nil,
			"has inputs label none, the plan wants " + sp.InputsDigest},
	} {
		dec := decide(tc.f, sp)
		if dec.digest != tc.digest || dec.result != tc.result || !slices.Equal(dec.retag, tc.retag) || !strings.Contains(dec.why, tc.why) {
			t.Errorf("%s: decide = %+v; want %s %s retag %v why %q", tc.name, dec, tc.digest, tc.result, tc.retag, tc.why)
		}
	}
}

// The report of `mage verify` lists the SBOM's packages only when it has
// some.
func TestATagReportWithoutPackagesHasNoSBOMLine(t *testing.T) {
	r := TagReport{Ref: "r:t", Digest: "sha256:d", Image: "tf2-cpu"}
	if text := strings.Join(r.Lines(), "\n"); strings.Contains(text, "SBOM lists") {
		t.Errorf("no packages, yet:\n%s", text)
	}
	r.Packages = []string{"torch==2.0.1"}
	if text := strings.Join(r.Lines(), "\n"); !strings.Contains(text, "SBOM lists  torch==2.0.1") {
		t.Errorf("packages missing:\n%s", text)
	}
}

// `mage verify` takes tag references only: a repository and a tag.
func TestVerifyTakesTagReferencesOnly(t *testing.T) {
	for _, ref := range []string{":t", "repo", "host:5000/repo", "repo@sha256:" + strings.Repeat("a", 64), "repo:t@sha256:" + strings.Repeat("a", 64)} {
		_, err := VerifyTag(context.Background(), nil, sign.Verifier{}, ref)
		if err == nil || !strings.Contains(err.Error(), "is not a tag reference") {
			t.Errorf("VerifyTag(%q): %v, want it refused as no tag reference", ref, err)
		}
	}
}
