package bench

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/variant"
)

func publishSpecs(t *testing.T, env map[string]string) []plan.Spec {
	t.Helper()
	s, err := variant.Parse(variant.MapLookup(env), "0.1.0", "abc1234")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := plan.Plan(s, plan.Request{Images: catalog.Names(), Mode: plan.Publish})
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

func decodeBake(t *testing.T, b []byte) bakeFile {
	t.Helper()
	var f bakeFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("bake file is not JSON: %v\n%s", err, b)
	}
	return f
}

func argMap(args []catalog.Arg) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		m[a.Name] = a.Value
	}
	return m
}

// TestBakeFileFollowsThePlan: one target per planned image with the plan's
// recipe, stage, platforms, tags, label and arguments; a framework target
// builds its base stage with the base's arguments.
func TestBakeFileFollowsThePlan(t *testing.T) {
	for _, env := range []map[string]string{
		{"DOCKERHUB_REGISTRY": "127.0.0.1:5000/determinedai", "REGISTRY_REPO": "bench-bake-1", "RECIPES_DIR": "."},
		{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1", "WITH_AWS_TRACE": "1", "RECIPES_DIR": "recipes"},
	} {
		specs := publishSpecs(t, env)
		b, err := BakeFile(specs)
		if err != nil {
			t.Fatal(err)
		}
		f := decodeBake(t, b)
		var names []string
		byName := map[string]plan.Spec{}
		for _, sp := range specs {
			names = append(names, sp.Image.Name)
			byName[sp.Image.Name] = sp
		}
		if got := f.Group["default"].Targets; !slices.Equal(got, names) {
			t.Errorf("%v: group default %v, want %v", env, got, names)
		}
		if len(f.Target) != len(catalog.All()) {
			t.Errorf("%v: %d targets, want %d", env, len(f.Target), len(catalog.All()))
		}
		for _, sp := range specs {
			tg, ok := f.Target[sp.Image.Name]
			if !ok {
				t.Errorf("no target %s", sp.Image.Name)
				continue
			}
			if tg.Context != sp.Context || tg.Dockerfile != sp.Image.Recipe || tg.Target != sp.Target ||
				!slices.Equal(tg.Platforms, sp.Platforms) || !slices.Equal(tg.Tags, sp.Tags.List()) ||
				tg.Labels[plan.InputsLabel] != sp.InputsDigest {
				t.Errorf("%s: target %+v does not match the spec (context %s, recipe %s, stage %s, platforms %v, tags %v)",
					sp.Image.Name, tg, sp.Context, sp.Image.Recipe, sp.Target, sp.Platforms, sp.Tags.List())
			}
			own := argMap(sp.BuildArgs)
			if sp.Base == "" {
				if !maps.Equal(tg.Args, own) {
					t.Errorf("%s: args %v, want the spec's %v", sp.Image.Name, tg.Args, own)
				}
				continue
			}
			base := byName[sp.Base]
			want := maps.Clone(own)
			maps.Copy(want, argMap(base.BuildArgs)) // the base stage's arguments win
			want[FrameworkBaseArg] = "base"
			if !maps.Equal(tg.Args, want) {
				t.Errorf("%s: args %v, want %v", sp.Image.Name, tg.Args, want)
			}
			if tg.Args["BASE_IMAGE"] != base.Image.From || tg.Args["BASE_IMAGE"] == "" {
				t.Errorf("%s: BASE_IMAGE %q, want the base's external image %q", sp.Image.Name, tg.Args["BASE_IMAGE"], base.Image.From)
			}
			for _, id := range base.Secrets {
				if !slices.Contains(tg.Secret, "id="+id+",env="+id) {
					t.Errorf("%s: secret %s of its base stage missing: %v", sp.Image.Name, id, tg.Secret)
				}
			}
		}
	}
}

func TestBakeFileRefusals(t *testing.T) {
	specs := publishSpecs(t, map[string]string{})
	var fw []plan.Spec
	for _, sp := range specs {
		if sp.Image.Name == "tf2-cpu" {
			fw = append(fw, sp)
		}
	}
	if _, err := BakeFile(fw); err == nil || !strings.Contains(err.Error(), "cpu-py-38-base, which is not in the plan") {
		t.Errorf("framework without its base: %v", err)
	}
	s, err := variant.Parse(variant.MapLookup(map[string]string{}), "0.1.0", "abc1234")
	if err != nil {
		t.Fatal(err)
	}
	local, err := plan.Plan(s, plan.Request{Images: []string{"tf1-cpu"}, Mode: plan.Build})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BakeFile(local); err == nil || !strings.Contains(err.Error(), "not planned to be pushed") {
		t.Errorf("local build plan: %v", err)
	}
	if _, err := BakeFile(append(specs[:1:1], specs[0])); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := BakeFile(nil); err == nil {
		t.Error("no specs: no error")
	}
}

// TestBakePhasesBuildOnPushedBases: phase 1 holds exactly the images without
// a catalog base, as BakeFile writes them; phase 2 the others, each FROM its
// base's hashed tag by the digest phase 1 reported, without a base stage of
// its own; a missing digest is an error naming the base.
func TestBakePhasesBuildOnPushedBases(t *testing.T) {
	specs := publishSpecs(t, map[string]string{"DOCKERHUB_REGISTRY": "127.0.0.1:5000/determinedai", "RECIPES_DIR": "."})
	p1, phase2, err := BakePhases(specs)
	if err != nil {
		t.Fatal(err)
	}
	f1 := decodeBake(t, p1)
	digests := map[string]string{}
	byName := map[string]plan.Spec{}
	for i, sp := range specs {
		byName[sp.Image.Name] = sp
		_, in1 := f1.Target[sp.Image.Name]
		if in1 != (sp.Base == "") {
			t.Errorf("%s in phase 1: %v, want %v", sp.Image.Name, in1, sp.Base == "")
		}
		if sp.Base == "" {
			digests[sp.Image.Name] = "sha256:" + strings.Repeat(string(rune('a'+i%6)), 64)
		}
	}
	p2, err := phase2(digests)
	if err != nil {
		t.Fatal(err)
	}
	f2 := decodeBake(t, p2)
	if len(f1.Target)+len(f2.Target) != len(specs) {
		t.Errorf("%d + %d targets for %d images", len(f1.Target), len(f2.Target), len(specs))
	}
	for name, tg := range f2.Target {
		sp := byName[name]
		want := byName[sp.Base].Tags.Hashed + "@" + digests[sp.Base]
		if tg.Args["BASE_IMAGE"] != want {
			t.Errorf("%s: BASE_IMAGE=%q, want %q", name, tg.Args["BASE_IMAGE"], want)
		}
		if _, ok := tg.Args[FrameworkBaseArg]; ok {
			t.Errorf("%s builds a base stage of its own: %v", name, tg.Args)
		}
		if !slices.Equal(tg.Tags, sp.Tags.List()) || tg.Target != sp.Target || !slices.Equal(tg.Platforms, sp.Platforms) {
			t.Errorf("%s: target %+v does not follow the plan", name, tg)
		}
	}
	delete(digests, "gpu-cuda-113-base")
	if _, err := phase2(digests); err == nil || !strings.Contains(err.Error(), "gpu-cuda-113-base") {
		t.Errorf("missing base digest: err %v, want one naming gpu-cuda-113-base", err)
	}
}
