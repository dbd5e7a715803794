package publish

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
)

// baseBuilds counts the builds of base images and the distinct bases the
// jobs publish (per WITH_MPI value).
func baseBuilds(h *harness) (builds, distinct int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, n := range h.builds {
		if img, err := catalog.Lookup(name); err == nil && img.IsBase() {
			builds += n
		}
	}
	return builds, 10
}

// testLease is a lease fast enough for the in-memory registries. Its ttl is
// long (no test here lets a live holder's lease lapse: a dead one's is
// written by the test) and its settle wide, so a loaded machine that is
// slow to schedule a renewal, or a claimant between its look and its write,
// does not make two holders.
var testLease = &leaseTimes{ttl: 30 * time.Second, renew: 500 * time.Millisecond, settle: 500 * time.Millisecond, poll: 100 * time.Millisecond}

// All 19 jobs of a workflow start at once, as CircleCI starts them, and
// every build takes a while, so every job finds its base missing. Every job
// must still succeed, every framework image must be FROM the base digest
// its own job verified, and the release tooling must accept the run.
// Without leases the jobs that share a base each build it; with them
// (what the targets use) each distinct base is built once.
func TestReleaseJobsStartedAtOnce(t *testing.T) {
	for _, lease := range []*leaseTimes{nil, testLease} {
		for _, wf := range bothWorkflows {
			t.Run(fmt.Sprintf("%s/lease=%v", wf.name, lease != nil), func(t *testing.T) {
				h := newHarness(t)
				h.onBuild = func(ctx context.Context, sp plan.Spec) error { return sleep(ctx, 300*time.Millisecond) }
				runs := play(t, h, wf.name, true, lease)
				for job, r := range runs {
					if r.approval {
						continue
					}
					if !r.ok {
						t.Errorf("job %s failed:\n%s", job, h.err.String())
						continue
					}
					checkOwnBase(t, job, r.report)
				}
				if _, _, err := releaseBump(t, builds(runs, "abc1234"), "abc1234", wf.dev); err != nil {
					t.Errorf("the release tooling refused the run: %v", err)
				}
				n, distinct := baseBuilds(h)
				t.Logf("release-base-builds: %d base builds in the 19 jobs started at once (%d distinct bases; leases %v)", n, distinct, lease != nil)
				switch {
				case lease != nil && n != distinct:
					t.Errorf("%d base builds with leases, want one per distinct base (%d): %v", n, distinct, h.builds)
				case n < distinct:
					t.Errorf("%d base builds for %d distinct bases", n, distinct)
				}
			})
		}
	}
}

// checkOwnBase: the job's framework image was built FROM the digest at
// which the same job found or built and verified its base.
func checkOwnBase(t *testing.T, job string, rep *Report) {
	t.Helper()
	if rep == nil {
		t.Errorf("job %s: no report", job)
		return
	}
	byName := map[string]ImageReport{}
	for _, ir := range rep.Images {
		byName[ir.Name] = ir
	}
	for _, ir := range rep.Images {
		img, err := catalog.Lookup(ir.Name)
		if err != nil || img.Base == "" {
			continue
		}
		base, ok := byName[img.Base]
		if !ok || !base.Verified || len(base.Tags.Dockerhub) == 0 || ir.Inputs == nil {
			t.Errorf("job %s: base %s not verified in the same job: %+v", job, img.Base, base)
			continue
		}
		from := ir.Inputs.Images[base.Tags.Dockerhub[0]]
		if from == "" || from != base.Digest {
			t.Errorf("job %s: %s is FROM %s@%s, its job verified the base at %s", job, ir.Name, base.Tags.Dockerhub[0], from, base.Digest)
		}
	}
	if !strings.Contains(job, "rocm") && len(rep.Images) != 2 {
		t.Errorf("job %s published %d images, want the image and its base", job, len(rep.Images))
	}
}
