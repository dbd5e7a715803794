package publish

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/determined-ai/environments/magefiles/ci"
	"github.com/determined-ai/environments/magefiles/plan"
)

// This file plays Determined's release tooling (update-bumpenvs-yaml.py) on
// the generated CircleCI config: every job of a workflow runs its own publish
// step with its own ARTIFACTS_DIR, against shared registries (as CI jobs share
// Docker Hub); the files of the jobs that succeeded are merged by file name,
// each is loaded as a YAML mapping, and every key must appear exactly once
// with the contract's tag.

// ciJob is a job of a workflow, as the generated YAML says.
type ciJob struct {
	name     string
	approval bool
	requires []string
	command  string // the publish step
}

func workflowJobs(t *testing.T, workflow string) []ciJob {
	t.Helper()
	text, err := ci.Config()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Jobs map[string]struct {
			Steps []any `yaml:"steps"`
		} `yaml:"jobs"`
		Workflows map[string]struct {
			Jobs []map[string]struct {
				Type     string   `yaml:"type"`
				Requires []string `yaml:"requires"`
			} `yaml:"jobs"`
		} `yaml:"workflows"`
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	wf, ok := cfg.Workflows[workflow]
	if !ok {
		t.Fatalf("no workflow %s", workflow)
	}
	var out []ciJob
	for _, entry := range wf.Jobs {
		for name, set := range entry {
			j := ciJob{name: name, approval: set.Type == "approval", requires: set.Requires}
			for _, s := range cfg.Jobs[name].Steps {
				m, _ := s.(map[string]any)
				run, _ := m["run"].(map[string]any)
				if cmd, _ := run["command"].(string); strings.Contains(cmd, "go run magefile.go") {
					if j.command != "" {
						t.Fatalf("job %s has two publish steps", name)
					}
					j.command = cmd
				}
			}
			if !j.approval && j.command == "" {
				t.Fatalf("job %s has no publish step", name)
			}
			out = append(out, j)
		}
	}
	return out
}

// parseStep splits "K=V ... go run magefile.go -v publishImage IMAGE" into
// its settings and image. The generated steps use no quoting.
func parseStep(t *testing.T, cmd string) (map[string]string, string) {
	t.Helper()
	words := strings.Fields(cmd)
	env := map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = v
		words = words[1:]
	}
	if !slices.Equal(words[:min(len(words), 5)], []string{"go", "run", "magefile.go", "-v", "publishImage"}) || len(words) != 6 {
		t.Fatalf("publish step %q is not `go run magefile.go -v publishImage <image>`", cmd)
	}
	return env, words[5]
}

// jobRun is what one job left behind.
type jobRun struct {
	ok    bool
	files map[string]string // its ARTIFACTS_DIR: name -> content
}

// playWorkflow runs every job of workflow in order (CircleCI runs a job once
// the jobs it requires succeeded; approvals are given).
func playWorkflow(t *testing.T, h *harness, workflow string) map[string]jobRun {
	t.Helper()
	base := maps.Clone(h.env)
	runs := map[string]jobRun{}
	for _, j := range workflowJobs(t, workflow) {
		if j.approval {
			runs[j.name] = jobRun{ok: true}
			continue
		}
		ready := true
		for _, r := range j.requires {
			if !runs[r].ok {
				ready = false
			}
		}
		if !ready {
			runs[j.name] = jobRun{} // not run: a job it requires failed
			continue
		}
		env, image := parseStep(t, j.command)
		if env["ARTIFACTS_DIR"] != ci.ArtifactsDir || env["PUBLISH_REPORT"] == "" || strings.HasPrefix(env["PUBLISH_REPORT"], ci.ArtifactsDir+"/") {
			t.Fatalf("job %s: ARTIFACTS_DIR=%q PUBLISH_REPORT=%q", j.name, env["ARTIFACTS_DIR"], env["PUBLISH_REPORT"])
		}
		// Each job runs on its own machine: its own /tmp.
		machine := t.TempDir()
		h.env = maps.Clone(base)
		maps.Copy(h.env, env)
		h.env["ARTIFACTS_DIR"] = filepath.Join(machine, "artifacts")
		h.env["PUBLISH_REPORT"] = filepath.Join(machine, "publish-report.json")
		e := h.buildEnv()
		// As targets.PublishImage does.
		_, err := publishWith(context.Background(), e, h.client(), Options{Images: []string{image}, Dockerhub: true, NGC: e.Settings.NGCPublish}, hooks{
			build:     h.build,
			preflight: func(context.Context, []plan.Spec) error { return nil },
		})
		run := jobRun{ok: err == nil, files: map[string]string{}}
		if ents, rerr := os.ReadDir(h.env["ARTIFACTS_DIR"]); rerr == nil {
			for _, ent := range ents {
				b, rerr := os.ReadFile(filepath.Join(h.env["ARTIFACTS_DIR"], ent.Name()))
				if rerr != nil {
					t.Fatal(rerr)
				}
				run.files[ent.Name()] = string(b)
			}
		}
		// The report is beside ARTIFACTS_DIR, never in it.
		if b, rerr := os.ReadFile(h.env["PUBLISH_REPORT"]); rerr != nil {
			t.Errorf("job %s: no report at PUBLISH_REPORT: %v", j.name, rerr)
		} else if !json.Valid(b) {
			t.Errorf("job %s: report is not JSON", j.name)
		}
		runs[j.name] = run
	}
	h.env = base
	return runs
}

// bump merges the artifacts of the successful jobs by file name, as
// update-bumpenvs-yaml.py does, and returns every key with its value and the
// number of times it was found. It fails on two jobs writing the same file
// name (one would silently overwrite the other).
func bump(t *testing.T, runs map[string]jobRun) (map[string]string, map[string]int) {
	t.Helper()
	byName := map[string]string{}
	from := map[string]string{}
	for _, job := range slices.Sorted(maps.Keys(runs)) {
		r := runs[job]
		if !r.ok {
			continue // the tooling skips jobs that did not succeed
		}
		for name, content := range r.files {
			if prev, dup := from[name]; dup {
				t.Errorf("jobs %s and %s both store %s: one overwrites the other", prev, job, name)
			}
			from[name], byName[name] = job, content
		}
	}
	values, count := map[string]string{}, map[string]int{}
	for name, content := range byName {
		var m map[string]string
		if err := yaml.Unmarshal([]byte(content), &m); err != nil {
			t.Errorf("%s does not load as a YAML mapping: %v", name, err)
			continue
		}
		for k, v := range m {
			values[k] = v
			count[k]++
		}
	}
	return values, count
}

// contractTags are the tags the contract (plan/testdata/contract.json, from
// the old Makefile) gives each framework image under WITH_MPI=mpi in repo.
func contractTags(t *testing.T, hub, repo, mpi string) map[string][2]string {
	t.Helper()
	b, err := os.ReadFile("../plan/testdata/contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Images map[string]struct {
			Recipe string   `json:"recipe"`
			Tags   []string `json:"tags"`
		} `json:"images"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for image, ic := range c.Images {
		if strings.HasSuffix(ic.Recipe, " base") {
			continue
		}
		var tags [2]string
		for i, tag := range ic.Tags {
			tag = strings.Replace(tag, "determinedai/environments:", hub+"/determinedai/"+repo+":", 1)
			if mpi == "1" {
				for _, sfx := range []string{"-cpu-<", "-gpu-<"} {
					tag = strings.Replace(tag, sfx, sfx[:4]+"-mpi-<", 1)
				}
			}
			tags[i] = strings.NewReplacer("<hash>", "abc1234", "<version>", "0.26.4").Replace(tag)
		}
		out[image] = tags
	}
	return out
}

// wantKeys are the keys every successful image job must contribute.
func wantKeys(t *testing.T, h *harness, runs map[string]jobRun, dev bool) map[string]string {
	t.Helper()
	repo := "environments"
	if dev {
		repo = "environments-dev"
	}
	want := map[string]string{}
	for job := range runs {
		name := strings.TrimSuffix(job, "-dev")
		if !strings.HasPrefix(name, "build-and-publish-docker-") {
			continue
		}
		mpi := name[len(name)-1:]
		image := strings.TrimSuffix(strings.TrimPrefix(name, "build-and-publish-docker-"), "-"+mpi)
		tags := contractTags(t, h.hub, repo, mpi)[image]
		if tags[0] == "" {
			t.Fatalf("job %s: image %s not in the contract", job, image)
		}
		key := strings.ReplaceAll(image, "-", "_") + "_" + mpi
		want[key+"_hashed"], want[key+"_versioned"] = tags[0], tags[1]
	}
	return want
}

func TestReleaseToolingOnTheGeneratedWorkflows(t *testing.T) {
	for _, wf := range []struct {
		name string
		dev  bool
	}{{ci.ReleaseWorkflow, false}, {ci.DevWorkflow, true}} {
		t.Run(wf.name, func(t *testing.T) {
			h := newHarness(t)
			runs := playWorkflow(t, h, wf.name)
			jobs := 0
			for job, r := range runs {
				if !r.ok {
					t.Errorf("job %s failed:\n%s", job, h.err.String())
				}
				if strings.HasPrefix(job, "request-") {
					continue
				}
				jobs++
				// Each job stores exactly its own file; base jobs none.
				var want []string
				if strings.Contains(job, "-docker-") {
					name := strings.TrimSuffix(job, "-dev")
					want = []string{"publish-" + strings.TrimPrefix(name, "build-and-publish-docker-")}
				}
				if got := slices.Sorted(maps.Keys(r.files)); !slices.Equal(got, want) {
					t.Errorf("job %s stores %v, want %v", job, got, want)
				}
			}
			if jobs != 29 {
				t.Errorf("%d publish jobs, want 29", jobs)
			}
			values, count := bump(t, runs)
			want := wantKeys(t, h, runs, wf.dev)
			if len(want) != 2*19 {
				t.Errorf("%d keys expected, want 38 (19 image jobs)", len(want))
			}
			for k, v := range want {
				if count[k] != 1 || values[k] != v {
					t.Errorf("key %s: found %d times, value %q; want once, %q", k, count[k], values[k], v)
				}
			}
			for k := range values {
				if _, ok := want[k]; !ok {
					t.Errorf("unexpected key %s: %s", k, values[k])
				}
			}
			// Up to date: every framework job verified the base its base job
			// published instead of building it again, so each job built
			// exactly one image.
			if n := h.buildCount(); n != jobs {
				t.Errorf("%d builds in %d jobs: %v", n, jobs, h.builds)
			}
		})
	}
}

func TestReleaseToolingAFailedImageCostsOnlyItsOwnJob(t *testing.T) {
	h := newHarness(t)
	h.fail["tf28-cpu"] = true
	runs := playWorkflow(t, h, ci.ReleaseWorkflow)
	for job, r := range runs {
		failed := strings.HasPrefix(job, "build-and-publish-docker-tf28-cpu-")
		if r.ok == failed {
			t.Errorf("job %s ok=%v", job, r.ok)
		}
		if failed && len(r.files) != 0 {
			t.Errorf("failed job %s left %v", job, slices.Sorted(maps.Keys(r.files)))
		}
	}
	values, count := bump(t, runs)
	want := wantKeys(t, h, runs, false)
	for k, v := range want {
		lost := strings.HasPrefix(k, "tf28_cpu_")
		if lost {
			if count[k] != 0 {
				t.Errorf("key %s of the failed image was bumped", k)
			}
			continue
		}
		if count[k] != 1 || values[k] != v {
			t.Errorf("key %s: found %d times, value %q; want once, %q", k, count[k], values[k], v)
		}
	}
	if len(values) != len(want)-4 {
		t.Errorf("%d keys bumped, want %d (all but tf28-cpu's four)", len(values), len(want)-4)
	}
}

func TestCIJobsStoreTheContractArtifactName(t *testing.T) {
	ws, err := ci.Workflows()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		for _, j := range w.Jobs {
			want := ""
			if !j.Base {
				want = ArtifactName(j.Image, j.MPI)
			}
			if j.Artifact != want {
				t.Errorf("%s: artifact %q, want %q", j.Name, j.Artifact, want)
			}
		}
	}
}
