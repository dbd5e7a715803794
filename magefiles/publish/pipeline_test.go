package publish

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// slowRegistry delays Verify and Copy of the named images' tags and records
// when each call ended.
type slowRegistry struct {
	Registry
	delay time.Duration
	slow  func(tag string) bool

	mu    sync.Mutex
	ended map[string]time.Time // first tag -> end of its last Verify or Copy
}

func (r *slowRegistry) wait(tag string) {
	if r.slow(tag) {
		time.Sleep(r.delay)
	}
}

func (r *slowRegistry) done(tag string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended[tag] = time.Now()
}

func (r *slowRegistry) Verify(ctx context.Context, tags []string, d string, ps []string) (registry.Image, error) {
	r.wait(tags[0])
	defer r.done(tags[0])
	return r.Registry.Verify(ctx, tags, d, ps)
}

func (r *slowRegistry) Copy(ctx context.Context, src string, dst []string) (registry.CopyStats, error) {
	r.wait(dst[0])
	defer r.done(dst[0])
	return r.Registry.Copy(ctx, src, dst)
}

// buildStarts records when each stand-in build started.
func buildStarts(h *harness) (func() map[string]time.Time, func(context.Context, plan.Spec) error) {
	var mu sync.Mutex
	starts := map[string]time.Time{}
	return func() map[string]time.Time {
			mu.Lock()
			defer mu.Unlock()
			return starts
		}, func(_ context.Context, sp plan.Spec) error {
			mu.Lock()
			defer mu.Unlock()
			starts[sp.Image.Name] = time.Now()
			return nil
		}
}

// TestDependentsStartAfterThePushNotTheVerification: the images built on a
// base start while the base is still being verified; with one slot, an
// image's verification and NGC copy overlap the next build.
func TestDependentsStartAfterThePushNotTheVerification(t *testing.T) {
	h := newHarness(t)
	h.env["JOBS"] = "1"
	starts, hook := buildStarts(h)
	h.onBuild = hook
	base, err := tagsOfImage(h, "cpu-py-38-base")
	if err != nil {
		t.Fatal(err)
	}
	reg := &slowRegistry{Registry: h.client(), delay: 400 * time.Millisecond, ended: map[string]time.Time{},
		slow: func(tag string) bool { return tag == base || strings.Contains(tag, "/ngc/") }}
	rep, err := h.run(context.Background(), reg, Options{Images: []string{"tf2-cpu", "pt-cpu"}, Dockerhub: true, NGC: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ir := range rep.Images {
		if ir.Result != Built || !ir.Verified {
			t.Errorf("%s: %+v", ir.Name, ir)
		}
	}
	got := starts()
	baseVerified := reg.ended[base]
	for _, n := range []string{"tf2-cpu", "pt-cpu"} {
		if !got[n].Before(baseVerified) {
			t.Errorf("%s started at %s, after its base's verification ended (%s): it waited for the verification",
				n, got[n].Format("15:04:05.000"), baseVerified.Format("15:04:05.000"))
		}
	}
	// One slot: the second framework build started while the first one's
	// NGC copy (400 ms) was still running.
	first, second := "tf2-cpu", "pt-cpu"
	if got[second].Before(got[first]) {
		first, second = second, first
	}
	ngcFirst := ngcTagOf(t, h, first)
	if !got[second].Before(reg.ended[ngcFirst]) {
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
	// The base's verification is slow, so the images on it are built first.
	reg := &slowRegistry{Registry: h.client(), delay: 300 * time.Millisecond, ended: map[string]time.Time{},
		slow: func(tag string) bool { return tag == base }}
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
