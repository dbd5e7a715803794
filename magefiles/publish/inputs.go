package publish

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/determined-ai/environments/magefiles/inputs"
	"github.com/determined-ai/environments/magefiles/plan"
)

// checkInputs asks every source whether the external inputs the builds of
// specs read (for this variant and these platforms) still exist, when
// CHECK_INPUTS=1. Each missing or unreachable input is printed with its
// image, source and what to do; the error names them.
func (p *publisher) checkInputs(ctx context.Context, specs []plan.Spec) error {
	if p.inputs == nil {
		return nil
	}
	s := p.e.Settings
	flags := map[string]bool{"WITH_MPI": s.MPI, "WITH_OFI": s.OFI, "WITH_NCCL": s.NCCL, "WITH_AWS_TRACE": s.AWSTrace}
	var imgs []inputs.ImageInputs
	for _, sp := range specs {
		ii, err := inputs.ForBuild(sp.Image.Name, inputs.Variant{Flags: flags, Platforms: sp.Platforms})
		if err != nil {
			return fmt.Errorf("publish: CHECK_INPUTS=1: %w", err)
		}
		imgs = append(imgs, ii)
	}
	if p.dry {
		p.e.Runner.Note("check that the external inputs of %d images still exist (CHECK_INPUTS=1; `mage inputs -check`)", len(imgs))
		return nil
	}
	start := time.Now()
	rs := p.inputs.Check(ctx, imgs)
	var b strings.Builder
	if err := inputs.WriteResults(&b, rs, time.Since(start), false); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		p.e.Status.Info("%s", line)
	}
	if err := inputs.Verdict(rs); err != nil {
		return fmt.Errorf("publish: CHECK_INPUTS=1: %w", err)
	}
	return nil
}
