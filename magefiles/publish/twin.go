package publish

import (
	"context"
	"strings"

	"github.com/determined-ai/environments/magefiles/plan"
)

// concurrentTwin handles the one verification failure that is not a fault:
// CI jobs that share a base and start together each find it missing, each
// build it and push it under the same tags, so the tags end up at whichever
// push came last. When every tag that does not hold digest holds an image
// with the same inputs and platforms (a twin another publish pushed), and
// digest itself reads back completely by digest, the image this run built
// is published: the images built on it here are FROM digest, which is
// verified, and the tags hold an image of the same inputs. It reports
// whether that is the case, with a warning naming both digests. inputs is
// the inputs digest of the pinned spec the build ran (the report's).
func (p *publisher) concurrentTwin(ctx context.Context, sp plan.Spec, inputs, digest string) bool {
	tags := sp.Tags.List()
	f, err := p.reg.Lookup(ctx, tags)
	if err != nil {
		return false
	}
	var twins []string
	for i, tag := range tags {
		d := f.Digests[i]
		if d == digest {
			continue
		}
		img, ok := f.Images[d]
		if d == "" || !ok || f.Problems[d] != nil || inputs == "" || img.Labels[plan.InputsLabel] != inputs || !samePlatforms(img.Platforms, sp.Platforms) {
			return false
		}
		twins = append(twins, tag+" at "+d)
	}
	if len(twins) == 0 {
		// Every tag holds this run's digest: whatever failed, no twin did it.
		return false
	}
	own := repoOf(sp.Tags.Hashed) + "@" + digest
	if _, err := p.reg.Verify(ctx, []string{own}, digest, sp.Platforms); err != nil {
		return false
	}
	p.status().Warn("%s: another publish of the same inputs pushed at the same time: %s; this run's %s is verified by digest and the images built on it here use it",
		sp.Image.Name, strings.Join(twins, ", "), digest)
	return true
}

// inputsOf is the inputs digest the image was planned with ("" when unknown).
func inputsOf(ent *ImageReport) string {
	if ent.Inputs == nil {
		return ""
	}
	return ent.Inputs.Digest
}
