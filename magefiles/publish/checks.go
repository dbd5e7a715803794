package publish

import (
	"context"
	"errors"
	"sync"

	"github.com/determined-ai/environments/magefiles/plan"
)

// checkAll runs the checks made before anything is built or pushed: the
// docker/buildx/builder preflight, the push-permission check, the
// resolution of the external images and the signing key. None has a side effect, so a real run
// makes them at once (a dry run, in order, for its printed lines); every
// failure is reported, the preflight's first.
func (p *publisher) checkAll(ctx context.Context, specs []plan.Spec, preflight func(context.Context, []plan.Spec) error) error {
	checks := []func() error{
		func() error { return preflight(ctx, specs) },
		func() error { return p.checkPush(ctx, specs) },
		func() error { return p.resolveExternal(ctx, specs) },
		func() error { return p.checkInputs(ctx, specs) },
		p.loadSigner,
	}
	errs := make([]error, len(checks))
	if p.dry {
		for i, c := range checks {
			if errs[i] = c(); errs[i] != nil {
				return errs[i]
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
