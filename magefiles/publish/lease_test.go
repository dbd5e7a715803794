package publish

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// publishJob publishes one image as a CI job does (publishImage), with its
// own ARTIFACTS_DIR, with build leases.
func publishJob(t *testing.T, h *harness, image string) error {
	env := maps.Clone(h.env)
	dir := t.TempDir()
	env["ARTIFACTS_DIR"], env["PUBLISH_REPORT"] = filepath.Join(dir, "artifacts"), filepath.Join(dir, "report.json")
	e := h.buildEnvFrom(env)
	_, err := publishWith(context.Background(), e, h.client(), Options{Images: []string{image}, Dockerhub: true, NGC: true, Lease: true}, hooks{
		build:     h.build,
		preflight: func(context.Context, []plan.Spec) error { return nil },
		lease:     testLease,
	})
	return err
}

// A lease whose holder died (it stopped renewing) is taken over once it
// expires: the waiting publish builds the base itself.
func TestLeaseOfADeadHolderIsTakenOver(t *testing.T) {
	h := newHarness(t)
	base, err := tagsOfImage(h, "cpu-py-37-base")
	if err != nil {
		t.Fatal(err)
	}
	tag := strings.TrimSuffix(base, "-abc1234") + "-build-lease"
	if err := h.client().WriteLease(context.Background(), tag, registry.Lease{Holder: "dead-job", Expires: time.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := publishJob(t, h, "tf1-cpu"); err != nil {
		t.Fatalf("publish: %v\n%s", err, h.err.String())
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("published in %s: it did not wait for the lease to expire", d)
	}
	if !strings.Contains(h.err.String(), "dead-job builds it") || h.builds["cpu-py-37-base"] != 1 {
		t.Errorf("builds %v; log:\n%s", h.builds, h.err.String())
	}
	l, found, err := h.client().ReadLease(context.Background(), tag)
	if err != nil || !found || !time.Now().After(l.Expires) || l.Holder == "dead-job" {
		t.Errorf("after the build the lease is %+v (found %v, %v), want this run's, given up", l, found, err)
	}
}

// When the holder's build fails, it gives the lease up and a waiting job
// builds the base: one failure costs one job, not both.
func TestLeaseHolderFailingLetsTheWaiterBuild(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	failed := false
	h.onBuild = func(ctx context.Context, sp plan.Spec) error {
		if sp.Image.Name != "cpu-py-38-base" {
			return nil
		}
		mu.Lock()
		first := !failed
		failed = true
		mu.Unlock()
		if first {
			_ = sleep(ctx, 200*time.Millisecond)
			return errors.New("building cpu-py-38-base: exit status 1")
		}
		return nil
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, image := range []string{"tf2-cpu", "pt-cpu"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = publishJob(t, h, image)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Errorf("errors %v: want exactly one job (the holder's) to fail", errs)
	}
	if h.builds["cpu-py-38-base"] != 2 {
		t.Errorf("base built %d times, want 2 (the failed holder, then the waiter)", h.builds["cpu-py-38-base"])
	}
}
