// Package build ties the pieces together for the targets: it loads the
// settings once, plans, checks the plan against the recipes, and runs builds
// through the scheduler and the runner.
package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/recipe"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/variant"
)

// Env is a loaded tool: settings, runner and status output.
type Env struct {
	Settings variant.Settings
	Runner   *run.Runner
	Status   *run.Status
	// Root is the checkout (where VERSION lives).
	Root string
}

// ErrNotCheckout is returned outside a git checkout with a commit.
var ErrNotCheckout = errors.New("not a git checkout")

// Load reads VERSION and the short commit from root and the settings from the
// environment.
func Load(ctx context.Context, root string, verbose bool) (*Env, error) {
	dry := os.Getenv("DRY_RUN") == "1"
	r := run.New(dry, verbose)
	r.Dir = root
	for _, k := range []string{"INTERNAL_AWS_DS", "INTERNAL_AWS_PATH"} {
		r.AddSecret(os.Getenv(k))
	}
	version, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading VERSION: %w", err)
	}
	hash, err := r.Output(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD")
	if err != nil {
		return nil, fmt.Errorf("%w: `git rev-parse --short HEAD` in %s failed (%v); the hash tag needs a git checkout with at least one commit", ErrNotCheckout, root, err)
	}
	s, err := variant.Parse(os.LookupEnv, string(version), hash)
	if err != nil {
		return nil, err
	}
	return &Env{Settings: s, Runner: r, Status: run.NewStatus(os.Stderr), Root: root}, nil
}

// Plan plans req and checks every build argument against the recipe, then
// plans again with what each stage reads (RecipeSources) in the inputs.
func (e *Env) Plan(req plan.Request) ([]plan.Spec, error) {
	if err := checkRecipesDir(e.Path(e.Settings.RecipesDir)); err != nil {
		return nil, err
	}
	specs, err := plan.Plan(e.Settings, req)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(e.Root, specs); err != nil {
		return nil, err
	}
	req.Sources = NewSources(e.Root)
	return plan.Plan(e.Settings, req)
}

// Path resolves p (relative paths are relative to the checkout root; the
// runner runs commands there, so printed commands keep them relative).
func (e *Env) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.Root, p)
}

// CheckArgs parses each recipe once and checks every spec's build arguments;
// relative recipe paths are read below root.
func CheckArgs(root string, specs []plan.Spec) error {
	parsed := map[string]*recipe.Recipe{}
	var errs []error
	for _, sp := range specs {
		rc, ok := parsed[sp.Recipe]
		if !ok {
			path := sp.Recipe
			if !filepath.IsAbs(path) {
				path = filepath.Join(root, path)
			}
			content, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("image %s: reading recipe: %w", sp.Image.Name, err)
			}
			if rc, err = recipe.Parse(sp.Recipe, content); err != nil {
				return err
			}
			parsed[sp.Recipe] = rc
		}
		args := map[string]string{}
		for _, a := range sp.BuildArgs {
			args[a.Name] = a.Value
		}
		if err := rc.CheckArgs(sp.Image.Name, sp.Target, args); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkRecipesDir fails unless dir holds a Dockerfile.*.
func checkRecipesDir(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "Dockerfile.*"))
	if err != nil {
		return err
	}
	if len(matches) == 0 {
		return fmt.Errorf("no Dockerfile.* in recipes directory %s (RECIPES_DIR)", dir)
	}
	return nil
}

// PrintSettings prints the resolved settings (verbose runs and dry runs).
func (e *Env) PrintSettings() {
	e.Runner.Note("settings: %s", strings.Join(e.Settings.Describe(), " "))
}
