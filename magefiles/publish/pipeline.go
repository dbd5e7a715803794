package publish

import (
	"context"
	"errors"
	"fmt"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/schedule"
)

// The publish pipeline. In a real run every image is two scheduler jobs:
//
//   - "<image>" (pushImage): the up-to-date check, or the build and push. It
//     holds one of the JOBS slots, and the images built on this one wait only
//     for it: they start as soon as its push has finished, FROM the digest
//     the build reported.
//   - "<image> publish" (finishImage): Docker Hub verification, the NGC copy
//     and its verification, the artifact file. It is Light (it takes no
//     slot), so verification and copies overlap later builds. It waits for
//     the image's own push and for its base's "publish" job, so an image is
//     never reported published when its base ends up failing verification:
//     it is then reported skipped, like an image whose base failed to build.
//
// A dry run keeps one job per image, so that its lines come out in plan order.

// finishSuffix names an image's second job.
const finishSuffix = " publish"

// errNotVerified is the error of an image that was built and pushed but not
// verified because the run was interrupted first.
var errNotVerified = errors.New("built and pushed, but not verified")

// Scheduler cost hints: framework builds take longer than bases; the
// verification, copy and artifact of an image are short.
const finishCost = 0.5

// imageJobs returns the scheduler jobs of one image (see above).
func (p *publisher) imageJobs(sp plan.Spec, ent *ImageReport) []schedule.Job {
	name := sp.Image.Name
	var deps []string
	cost := float64(frameworkCost)
	if sp.Base != "" {
		deps = []string{sp.Base}
	}
	if sp.Image.IsBase() {
		cost = baseCost
	}
	fail := func(err error) error {
		if err != nil && !p.dry {
			p.status().Fail("%s: %v", name, err)
		}
		return err
	}
	if p.dry {
		return []schedule.Job{{Name: name, Deps: deps, Cost: cost, Run: func(ctx context.Context) error {
			digest, result, err := p.pushImage(ctx, sp, ent)
			if err != nil {
				return err
			}
			return p.finishImage(ctx, sp, ent, digest, result)
		}}}
	}
	var digest string
	var result Result
	push := schedule.Job{Name: name, Deps: deps, Cost: cost, Run: func(ctx context.Context) error {
		var err error
		digest, result, err = p.pushImage(ctx, sp, ent)
		return fail(err)
	}}
	finishDeps := []string{name}
	if sp.Base != "" {
		finishDeps = append(finishDeps, sp.Base+finishSuffix)
	}
	finish := schedule.Job{Name: name + finishSuffix, Deps: finishDeps, Cost: finishCost, Light: true,
		Run: func(ctx context.Context) error {
			// The push job has finished (a dependency), so digest and result are set.
			return fail(p.finishImage(ctx, sp, ent, digest, result))
		}}
	return []schedule.Job{push, finish}
}

// imageResults folds the job results into one result per spec: the push
// job's when it did not succeed, else the "publish" job's, timed from the
// start of the push to the end of the publish.
func imageResults(specs []plan.Spec, rs []schedule.Result) []schedule.Result {
	byName := map[string]schedule.Result{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	out := make([]schedule.Result, len(specs))
	for i, sp := range specs {
		push := byName[sp.Image.Name]
		fin, split := byName[sp.Image.Name+finishSuffix]
		out[i] = push
		if !split || push.State != schedule.Done {
			continue
		}
		out[i].State, out[i].Err = fin.State, fin.Err
		switch fin.State {
		case schedule.Cancelled:
			out[i].Err = fmt.Errorf("%w: %w", errNotVerified, fin.Err)
			out[i].Duration = push.Duration
		case schedule.Skipped:
			out[i].Duration = push.Duration
		default:
			out[i].Duration = fin.Start.Add(fin.Duration).Sub(push.Start)
		}
	}
	return out
}
