package publish

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// gateLimit bounds how long a gated call waits for what it waits for: the
// tests below fail when it runs out (what they order did not happen).
const gateLimit = 20 * time.Second

// gatedRegistry holds Verify and Copy of a tag until the channel hold
// returns for it is closed (nil: not held; at most gateLimit) and records
// when each call ended. Holding a call until another step has started,
// instead of sleeping, orders the steps on any machine however loaded.
type gatedRegistry struct {
	Registry
	hold func(tag string) <-chan struct{}

	mu    sync.Mutex
	ended map[string]time.Time // first tag -> end of its last Verify or Copy
}

func (r *gatedRegistry) wait(tag string) {
	if ch := r.hold(tag); ch != nil {
		select {
		case <-ch:
		case <-time.After(gateLimit):
		}
	}
}

func (r *gatedRegistry) done(tag string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended[tag] = time.Now()
}

func (r *gatedRegistry) endOf(tag string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended[tag]
}

func (r *gatedRegistry) Verify(ctx context.Context, tags []string, d string, ps []string) (registry.Image, error) {
	r.wait(tags[0])
	defer r.done(tags[0])
	return r.Registry.Verify(ctx, tags, d, ps)
}

func (r *gatedRegistry) Copy(ctx context.Context, src string, dst []string) (registry.CopyStats, error) {
	r.wait(dst[0])
	defer r.done(dst[0])
	return r.Registry.Copy(ctx, src, dst)
}

// startLog records when each stand-in build started.
type startLog struct {
	mu      sync.Mutex
	at      map[string]time.Time
	changed chan struct{} // closed and replaced at each start
}

func newStartLog(h *harness) *startLog {
	l := &startLog{at: map[string]time.Time{}, changed: make(chan struct{})}
	h.onBuild = func(_ context.Context, sp plan.Spec) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.at[sp.Image.Name] = time.Now()
		close(l.changed)
		l.changed = make(chan struct{})
		return nil
	}
	return l
}

func (l *startLog) starts() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.at)
}

// all is closed once every named image's build has started.
func (l *startLog) all(names ...string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for {
			l.mu.Lock()
			n, changed := 0, l.changed
			for _, name := range names {
				if _, ok := l.at[name]; ok {
					n++
				}
			}
			l.mu.Unlock()
			if n == len(names) {
				close(ch)
				return
			}
			select {
			case <-changed:
			case <-time.After(gateLimit):
				return
			}
		}
	}()
	return ch
}

// TestDependentsStartAfterThePushNotTheVerification: the images built on a
// base start while the base is still being verified; with one slot, an
// image's verification and NGC copy overlap the next build. The base's
// verification and the framework images' NGC copies are held until both
// framework builds have started: a tool that waited for either would wait
// out gateLimit and start them after it.
func TestDependentsStartAfterThePushNotTheVerification(t *testing.T) {
	h := newHarness(t)
	h.env["JOBS"] = "1"
	log := newStartLog(h)
	base, err := tagsOfImage(h, "cpu-py-38-base")
	if err != nil {
		t.Fatal(err)
	}
	ngc := map[string]bool{ngcTagOf(t, h, "tf2-cpu"): true, ngcTagOf(t, h, "pt-cpu"): true}
	reg := &gatedRegistry{Registry: h.client(), ended: map[string]time.Time{},
		hold: func(tag string) <-chan struct{} {
			if tag == base || ngc[tag] {
				return log.all("tf2-cpu", "pt-cpu")
			}
			return nil
		}}
	rep, err := h.run(context.Background(), reg, Options{Images: []string{"tf2-cpu", "pt-cpu"}, Dockerhub: true, NGC: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ir := range rep.Images {
		if ir.Result != Built || !ir.Verified {
			t.Errorf("%s: %+v", ir.Name, ir)
		}
	}
	got := log.starts()
	baseVerified := reg.endOf(base)
	for _, n := range []string{"tf2-cpu", "pt-cpu"} {
		if !got[n].Before(baseVerified) {
			t.Errorf("%s started at %s, after its base's verification ended (%s): it waited for the verification",
				n, got[n].Format("15:04:05.000"), baseVerified.Format("15:04:05.000"))
		}
	}
	// One slot: the second framework build started while the first one's
	// NGC copy was still running.
	first, second := "tf2-cpu", "pt-cpu"
	if got[second].Before(got[first]) {
		first, second = second, first
	}
	if !got[second].Before(reg.endOf(ngcTagOf(t, h, first))) {
		t.Errorf("%s started after %s's NGC copy ended: copies do not overlap builds", second, first)
	}
}

// TestBaseFailingVerificationIsNotPublishedUnder: an image whose base fails
// verification after the image was already built on it is reported skipped,
// not published: no artifact, no NGC copy.
func TestBaseFailingVerificationIsNotPublishedUnder(t *testing.T) {
	h := newHarness(t)
	h.moved["cpu-py-38-base"] = true // its hashed tag is moved after the push: verification fails
	base, err := tagsOfImage(h, "cpu-py-38-base")
	if err != nil {
		t.Fatal(err)
	}
	// The base's verification waits until the images on it have started
	// building, so they are built before it fails.
	log := newStartLog(h)
	reg := &gatedRegistry{Registry: h.client(), ended: map[string]time.Time{},
		hold: func(tag string) <-chan struct{} {
			if tag == base {
				return log.all("tf2-cpu", "pt-cpu")
			}
			return nil
		}}
	rep, err := h.run(context.Background(), reg, Options{Images: []string{"tf2-cpu", "pt-cpu", "tf1-cpu"}, Dockerhub: true, NGC: true})
	if err == nil || !strings.Contains(err.Error(), "cpu-py-38-base") {
		t.Fatalf("error %v, want one naming cpu-py-38-base", err)
	}
	if h.builds["tf2-cpu"] != 1 || h.builds["pt-cpu"] != 1 {
		t.Errorf("builds %v: the images on the base were meant to be built before its verification failed", h.builds)
	}
	want := map[string]Result{"cpu-py-37-base": Built, "cpu-py-38-base": Failed, "tf1-cpu": Built, "tf2-cpu": Skipped, "pt-cpu": Skipped}
	for _, ir := range rep.Images {
		if ir.Result != want[ir.Name] {
			t.Errorf("%s: %s, want %s (%s)", ir.Name, ir.Result, want[ir.Name], ir.Error)
		}
		if ir.Result != Built && (ir.Verified || ir.Artifact != "" || ir.NGCCopied) {
			t.Errorf("%s claims something: %+v", ir.Name, ir)
		}
		if ir.Result == Skipped && !strings.Contains(ir.Error, "cpu-py-38-base") {
			t.Errorf("%s: error %q does not name the base", ir.Name, ir.Error)
		}
	}
	if got := readDir(t, h.artifactsDir()); !slices.Equal(got, []string{"publish-tf1-cpu-0"}) {
		t.Errorf("artifacts %v, want only tf1-cpu's", got)
	}
	for _, n := range []string{"tf2-cpu", "pt-cpu"} {
		if _, ok := digestOf(t, ngcTagOf(t, h, n)); ok {
			t.Errorf("%s is on NGC although its base failed verification", n)
		}
	}
}

func tagsOfImage(h *harness, image string) (string, error) {
	s := h.buildEnv().Settings
	specs, err := plan.Plan(s, plan.Request{Images: []string{image}, Mode: plan.Publish})
	if err != nil {
		return "", err
	}
	return specs[len(specs)-1].Tags.Hashed, nil
}

func ngcTagOf(t *testing.T, h *harness, image string) string {
	t.Helper()
	_, ngc := tagsOf(t, h, image)
	return ngc.Hashed
}
