package targets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"

	"github.com/determined-ai/environments/magefiles/mutants"
)

// Mutants runs mutation testing (the gremlins pinned in tools/mutants/go.mod)
// on the library packages, one package at a time against its unit tests,
// and prints each package's test efficacy and mutator coverage with its
// surviving mutants; it fails when a package is below efficacy 95 % or
// coverage 90 % once the mutants listed in magefiles/mutants/equivalent.txt
// are discounted. Slow: about two hours for all ten on 2 cores. Reads
// MUTANTS_PACKAGES (e.g. run,schedule; default all), MUTANTS_WORKERS
// (default 1), MUTANTS_TIMEOUT (timeout coefficient, default 10),
// MUTANTS_SLOW (1 keeps registry's and publish's slowest tests, left out by
// default) and MUTANTS_ENFORCE (0 reports without failing).
func Mutants(ctx context.Context) error {
	o, err := mutants.Settings(os.LookupEnv)
	if err != nil {
		return err
	}
	if o.Root, err = os.Getwd(); err != nil {
		return err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return fmt.Errorf("mutants: no cache directory for the built tester (set XDG_CACHE_HOME): %w", err)
	}
	o.CacheDir = filepath.Join(cache, "determined-environments", "mutants")
	if o.WorkDir, err = os.MkdirTemp("", "mutants-"); err != nil {
		return fmt.Errorf("mutants: %w", err)
	}
	o.Out, o.Verbose = os.Stdout, mg.Verbose()
	_, err = mutants.Run(ctx, o)
	return err
}
