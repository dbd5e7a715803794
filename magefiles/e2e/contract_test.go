package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/variant"
)

// The suite's expectations (tags, platforms, build arguments) come from
// the contract, plan/testdata/contract.json, which was written from the old
// Makefile's contract document and not from this code, turned into a
// scenario's settings by the README's rules: the registry and repository
// replace determinedai/environments, -mpi / -mpi-ofi follow -cpu / -gpu
// (not for the ROCm image), CPU images are linux/amd64 only under MPI, the
// contract's NGC images go to NGC unless NGC_PUBLISH is off. The planner's
// specs are checked against them (fromContract) before a scenario uses them.

// contractDoc is plan/testdata/contract.json.
type contractDoc struct {
	Images map[string]struct {
		Platforms []string          `json:"platforms"`
		Tags      []string          `json:"tags"`
		Args      map[string]string `json:"args"`
	} `json:"images"`
	NGC []string `json:"ngc"`
}

// expectation is what the contract says an image is under some settings.
type expectation struct {
	Tags, NGCTags plan.Tags
	Platforms     []string
	Args          map[string]string // the contract's build arguments, BASE_IMAGE unpinned
}

func loadContract(t testing.TB) contractDoc {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "plan", "testdata", "contract.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c contractDoc
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Images) != len(catalog.Names()) {
		t.Fatalf("the contract has %d images, the catalog %d", len(c.Images), len(catalog.Names()))
	}
	return c
}

// contractExpectations are the contract's images under env (the variables
// as the tool reads them), version and hash.
func contractExpectations(t testing.TB, env map[string]string, version, hash string) map[string]expectation {
	t.Helper()
	get := func(k, def string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return def
	}
	hub := get("DOCKERHUB_REGISTRY", "determinedai") + "/" + get("REGISTRY_REPO", "environments") + ":"
	ngc := get("NGC_REGISTRY", "nvcr.io/isv-ngc-partner/determined") + "/" + get("REGISTRY_REPO", "environments") + ":"
	ngcOn := get("NGC_PUBLISH", "1") == "1"
	mpi, ofi := env["WITH_MPI"] == "1", env["WITH_OFI"] == "1"
	suffix := ""
	if mpi {
		suffix = "-mpi"
		if ofi {
			suffix = "-mpi-ofi"
		}
	}
	rocm := func(name string) bool { return strings.Contains(name, "rocm") }
	// tagBody turns "determinedai/environments:<body>-<hash>" into the
	// variant's body, the <hash>/<version> filled in.
	tagBody := func(tag string, rocmImage bool) string {
		body := strings.TrimPrefix(tag, "determinedai/environments:")
		if body == tag {
			t.Fatalf("contract tag %q is not in determinedai/environments", tag)
		}
		if suffix != "" && !rocmImage {
			for _, acc := range []string{"-cpu-", "-gpu-"} {
				if i := strings.LastIndex(body, acc); i >= 0 {
					body = body[:i] + strings.TrimSuffix(acc, "-") + suffix + "-" + body[i+len(acc):]
					break
				}
			}
		}
		return strings.NewReplacer("<hash>", strings.TrimSpace(hash), "<version>", strings.TrimSpace(version)).Replace(body)
	}
	c := loadContract(t)
	out := map[string]expectation{}
	for name, img := range c.Images {
		if len(img.Tags) != 2 {
			t.Fatalf("contract image %s has tags %v, want hashed and versioned", name, img.Tags)
		}
		e := expectation{
			Tags:      plan.Tags{Hashed: hub + tagBody(img.Tags[0], rocm(name)), Versioned: hub + tagBody(img.Tags[1], rocm(name))},
			Platforms: img.Platforms,
			Args:      map[string]string{},
		}
		if mpi && !rocm(name) {
			e.Platforms = []string{"linux/amd64"}
		}
		if ngcOn && slices.Contains(c.NGC, name) {
			e.NGCTags = plan.Tags{Hashed: ngc + tagBody(img.Tags[0], rocm(name)), Versioned: ngc + tagBody(img.Tags[1], rocm(name))}
		}
		for k, v := range img.Args {
			if k == "BASE_IMAGE" && strings.HasPrefix(v, "determinedai/environments:") {
				v = hub + tagBody(v, false)
			}
			e.Args[k] = strings.NewReplacer("<hash>", strings.TrimSpace(hash), "<version>", strings.TrimSpace(version)).Replace(v)
		}
		out[name] = e
	}
	return out
}

// fromContract fails t for every way the planner's specs differ from the
// contract's expectations (tags, NGC tags, platforms, the contract's build
// arguments) and returns the specs with their tags and platforms taken from
// the contract, for the scenario to check the registries against.
func fromContract(t testing.TB, specs []plan.Spec, want map[string]expectation) []plan.Spec {
	t.Helper()
	out := slices.Clone(specs)
	for i, sp := range out {
		e, ok := want[sp.Image.Name]
		if !ok {
			t.Errorf("the plan has %s, which the contract does not", sp.Image.Name)
			continue
		}
		if sp.Tags != e.Tags {
			t.Errorf("%s: planned tags %v, the contract says %v", sp.Image.Name, sp.Tags.List(), e.Tags.List())
		}
		if sp.NGCTags != e.NGCTags {
			t.Errorf("%s: planned NGC tags %v, the contract says %v", sp.Image.Name, sp.NGCTags.List(), e.NGCTags.List())
		}
		if !slices.Equal(sp.Platforms, e.Platforms) {
			t.Errorf("%s: planned platforms %v, the contract says %v", sp.Image.Name, sp.Platforms, e.Platforms)
		}
		got := map[string]string{}
		for _, a := range sp.BuildArgs {
			got[a.Name] = a.Value
		}
		keys := make([]string, 0, len(e.Args))
		for k := range e.Args {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if g := got[k]; g != e.Args[k] && !(k == "BASE_IMAGE" && strings.HasPrefix(g, e.Args[k]+"@sha256:")) {
				t.Errorf("%s: planned build argument %s=%q, the contract says %q", sp.Image.Name, k, g, e.Args[k])
			}
		}
		out[i].Tags, out[i].NGCTags, out[i].Platforms = e.Tags, e.NGCTags, slices.Clone(e.Platforms)
	}
	if len(specs) != len(want) {
		t.Errorf("the plan has %d images, the contract %d", len(specs), len(want))
	}
	return out
}

// The contract's expectations under the scenarios' kinds of settings (a
// loopback registry, a dev repository, the MPI flavours) agree with the
// planner: what the suite checks the registries against is the contract,
// and a planner that drifts from it fails here already, without a stack.
func TestTheContractsExpectationsAgreeWithThePlan(t *testing.T) {
	for _, env := range []map[string]string{
		{"DOCKERHUB_REGISTRY": "127.0.0.1:5000/determinedai", "NGC_REGISTRY": "127.0.0.1:5001/ngc"},
		{"DOCKERHUB_REGISTRY": "127.0.0.1:5000/determinedai", "NGC_REGISTRY": "127.0.0.1:5001/ngc", "WITH_MPI": "1"},
		{"DOCKERHUB_REGISTRY": "127.0.0.1:5000/determinedai", "NGC_REGISTRY": "127.0.0.1:5001/ngc", "WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1"},
		{"DOCKERHUB_REGISTRY": "127.0.0.1:5000/determinedai", "REGISTRY_REPO": "environments-dev", "NGC_PUBLISH": ""},
		{"DOCKERHUB_REGISTRY": "127.0.0.1:5000/installplan-mpi-ofi", "NGC_PUBLISH": "", "PUSH": "1", "WITH_MPI": "1", "WITH_OFI": "1"}, // as TestInstallPlan
		{},
	} {
		s, err := variant.Parse(variant.MapLookup(env), "0.26.4", "abc1234")
		if err != nil {
			t.Fatal(err)
		}
		specs, err := plan.Plan(s, plan.Request{Images: catalog.Names(), Mode: plan.Publish})
		if err != nil {
			t.Fatal(err)
		}
		fromContract(t, specs, contractExpectations(t, env, "0.26.4\n", "abc1234"))

		// And a planner that drifts is caught: a tag, a platform, a pin.
		drifted := slices.Clone(specs)
		for i, sp := range drifted {
			switch sp.Image.Name {
			case "cpu-py-37-base":
				drifted[i].Tags.Hashed += "x"
			case "tf2-cpu":
				drifted[i].Platforms = []string{"linux/s390x"}
			case "pt-cpu":
				drifted[i].BuildArgs = slices.Clone(sp.BuildArgs)
				for j, a := range sp.BuildArgs {
					if a.Name == "TORCH_PIP" {
						drifted[i].BuildArgs[j].Value += " extra"
					}
				}
			}
		}
		rec := &errorRecorder{TB: t}
		fromContract(rec, drifted, contractExpectations(t, env, "0.26.4\n", "abc1234"))
		if len(rec.errs) != 3 {
			t.Errorf("%v: a plan drifted in 3 ways gave %d errors: %q", env, len(rec.errs), rec.errs)
		}
	}
}

// errorRecorder is a testing.TB whose Errorf only records.
type errorRecorder struct {
	testing.TB
	errs []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
