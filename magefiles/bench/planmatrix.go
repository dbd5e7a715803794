package bench

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/variant"
)

// variantFlags are the variant switches whose valid combinations the plan
// matrix covers.
var variantFlags = []string{"WITH_MPI", "WITH_OFI", "WITH_NCCL", "WITH_AWS_TRACE"}

// ValidCombos returns every combination of the variant flags that
// variant.Parse accepts (it refuses e.g. WITH_OFI=1 without WITH_MPI=1).
func ValidCombos() []map[string]string {
	var out []map[string]string
	for bits := 0; bits < 1<<len(variantFlags); bits++ {
		env := map[string]string{}
		for i, f := range variantFlags {
			env[f] = "0"
			if bits&(1<<i) != 0 {
				env[f] = "1"
			}
		}
		if _, err := variant.Parse(variant.MapLookup(env), "0.1.0", "abc1234"); err == nil {
			out = append(out, env)
		}
	}
	return out
}

// matrixCase is one plan of the matrix: settings environment and mode.
type matrixCase struct {
	env  map[string]string
	mode plan.Mode
}

// matrixCases are the valid variant combinations x release/dev repository x
// Build/Publish mode.
func matrixCases() []matrixCase {
	var out []matrixCase
	for _, combo := range ValidCombos() {
		for _, repo := range []string{variant.DefaultRegistryRepo, "environments-dev"} {
			for _, mode := range []plan.Mode{plan.Build, plan.Publish} {
				env := map[string]string{"REGISTRY_REPO": repo}
				for k, v := range combo {
					env[k] = v
				}
				out = append(out, matrixCase{env: env, mode: mode})
			}
		}
	}
	return out
}

// planAll parses the settings of every case and plans every catalog image
// under them: one full matrix.
func planAll(cases []matrixCase, names []string, root string) (int, error) {
	specs := 0
	// One matrix reads and hashes the recipes once, as one tool run does.
	var src plan.Sources
	if root != "" {
		src = build.NewSources(root)
	}
	for _, c := range cases {
		s, err := variant.Parse(variant.MapLookup(c.env), "0.1.0", "abc1234")
		if err != nil {
			return 0, err
		}
		req := plan.Request{Images: names, Mode: c.mode, Sources: src}
		if c.mode == plan.Publish {
			req.MetadataDir = "/tmp/artifacts/.metadata"
		}
		sp, err := plan.Plan(s, req)
		if err != nil {
			return 0, err
		}
		specs += len(sp)
	}
	return specs, nil
}

// matrixBudget is about how long planMatrix keeps timing rounds.
var matrixBudget = 2 * time.Second

// planMatrix times planning the whole matrix in process: a few warm-up
// rounds, then as many rounds as fit in matrixBudget (at least 20).
func planMatrix(r *reporter, root string) error {
	cases := matrixCases()
	names := catalog.Names()
	recipes := root
	if _, err := os.Stat(filepath.Join(root, "Dockerfile.cpu")); err != nil {
		recipes = "" // the sources are then left out of the inputs
		r.note("no recipes at %s (%v); planning without stage sources", filepath.Clean(root), err)
	}
	specs, err := planAll(cases, names, recipes)
	if err != nil {
		return err
	}
	if specs == 0 {
		return errors.New("the matrix planned no images")
	}
	for i := 0; i < 3; i++ {
		if _, err := planAll(cases, names, recipes); err != nil {
			return err
		}
	}
	var n int
	start := time.Now()
	for n < 20 || time.Since(start) < matrixBudget {
		if _, err := planAll(cases, names, recipes); err != nil {
			return err
		}
		n++
	}
	per := time.Since(start) / time.Duration(n)
	r.figure(FigPlanMatrix, Ms(per), 3, &Goal{Max: 10, Say: "<= 10"})
	r.note("one matrix = %d variant combinations x release/dev x Build/Publish = %d plans, %d specs; %d rounds timed",
		len(ValidCombos()), len(cases), specs, n)
	return nil
}
