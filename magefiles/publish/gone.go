package publish

import (
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
)

// goneBase returns the plan.GoneBaseError of sp, one of specs, when an
// external image of sp was not found (resolveExternal), or nil.
func (p *publisher) goneBase(sp plan.Spec, specs []plan.Spec) error {
	for _, ref := range sp.External {
		err, gone := p.gone[ref]
		if !gone {
			continue
		}
		why := ""
		if img, lerr := catalog.Lookup(sp.Image.Name); lerr == nil && img.From == ref {
			why = img.FromGone
		}
		return &plan.GoneBaseError{Image: sp.Image.Name, Ref: ref, Why: why, Dependents: plan.Dependents(sp.Image.Name, specs),
			Mirror: p.e.Settings.Mirrors[plan.RegistryOf(ref)], Err: err}
	}
	return nil
}
