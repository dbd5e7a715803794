package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/ci"
	"github.com/determined-ai/environments/magefiles/ci/citest"
	"github.com/determined-ai/environments/magefiles/plan"
)

// This file plays a release on the generated CircleCI config: every job of a
// workflow runs its own publish step with its own ARTIFACTS_DIR, against
// shared registries (as CI jobs share Docker Hub), and then Determined's
// release tooling (a model of update-bumpenvs-yaml.py, magefiles/ci/citest)
// reads the jobs' builds and artifacts from a stand-in of CircleCI's API, as
// the release engineer runs it: it asserts the exact set of successful job
// names and the exact set of artifact names, and bumps every key.

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
				if cmd, _ := run["command"].(string); strings.Contains(cmd, " publishImage ") {
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

// parseStep splits "K=V ... /tmp/envs -v publishImage IMAGE" (the tool the
// job compiled) into its settings and image. The generated steps use no
// quoting.
func parseStep(t *testing.T, cmd string) (map[string]string, string) {
	t.Helper()
	words := strings.Fields(cmd)
	env := map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = v
		words = words[1:]
	}
	if !slices.Equal(words[:min(len(words), 3)], []string{ci.Tool, "-v", "publishImage"}) || len(words) != 4 {
		t.Fatalf("publish step %q is not `%s -v publishImage <image>`", cmd, ci.Tool)
	}
	return env, words[3]
}

// bothWorkflows are the release and the development workflow.
var bothWorkflows = []struct {
	name string
	dev  bool
}{{ci.ReleaseWorkflow, false}, {ci.DevWorkflow, true}}

// jobRun is what one job left behind.
type jobRun struct {
	ok, approval bool
	files        map[string]string // its ARTIFACTS_DIR: name -> content
	report       *Report
}

// playWorkflow runs every job of workflow in order (CircleCI runs a job once
// the jobs it requires succeeded; approvals are given).
func playWorkflow(t *testing.T, h *harness, workflow string) map[string]jobRun {
	t.Helper()
	return play(t, h, workflow, false, nil)
}

// play runs the jobs of workflow one after the other, or all at once (as
// CircleCI starts them once approved: no job requires another), with build
// leases when lease is not nil.
func play(t *testing.T, h *harness, workflow string, atOnce bool, lease *leaseTimes) map[string]jobRun {
	t.Helper()
	type job struct {
		name, image string
		e           *build.Env
		arts, rep   string
	}
	runs := map[string]jobRun{}
	var jobs []job
	for _, j := range workflowJobs(t, workflow) {
		if j.approval {
			runs[j.name] = jobRun{ok: true, approval: true}
			continue
		}
		for _, r := range j.requires {
			if !runs[r].approval {
				t.Fatalf("job %s requires %s, which is not an approval: the jobs must not wait for each other", j.name, r)
			}
		}
		env, image := parseStep(t, j.command)
		if env["ARTIFACTS_DIR"] != ci.ArtifactsDir || env["PUBLISH_REPORT"] == "" || strings.HasPrefix(env["PUBLISH_REPORT"], ci.ArtifactsDir+"/") {
			t.Fatalf("job %s: ARTIFACTS_DIR=%q PUBLISH_REPORT=%q", j.name, env["ARTIFACTS_DIR"], env["PUBLISH_REPORT"])
		}
		// Each job runs on its own machine: its own /tmp.
		machine := t.TempDir()
		jobEnv := maps.Clone(h.env)
		maps.Copy(jobEnv, env)
		jobEnv["ARTIFACTS_DIR"] = filepath.Join(machine, "artifacts")
		jobEnv["PUBLISH_REPORT"] = filepath.Join(machine, "publish-report.json")
		jobs = append(jobs, job{name: j.name, image: image, e: h.buildEnvFrom(jobEnv), arts: jobEnv["ARTIFACTS_DIR"], rep: jobEnv["PUBLISH_REPORT"]})
	}
	var mu sync.Mutex
	var problems []string
	runJob := func(j job) {
		// As targets.PublishImage does.
		rep, err := publishWith(context.Background(), j.e, h.client(), Options{Images: []string{j.image}, Dockerhub: true, NGC: j.e.Settings.NGCPublish, Lease: lease != nil}, hooks{
			build:     h.build,
			preflight: func(context.Context, []plan.Spec) error { return nil },
			lease:     lease,
		})
		run := jobRun{ok: err == nil, files: map[string]string{}, report: rep}
		var bad []string
		if ents, rerr := os.ReadDir(j.arts); rerr == nil {
			for _, ent := range ents {
				b, rerr := os.ReadFile(filepath.Join(j.arts, ent.Name()))
				if rerr != nil {
					bad = append(bad, rerr.Error())
				}
				run.files[ent.Name()] = string(b)
			}
		}
		// The report is beside ARTIFACTS_DIR, never in it.
		if b, rerr := os.ReadFile(j.rep); rerr != nil {
			bad = append(bad, fmt.Sprintf("job %s: no report at PUBLISH_REPORT: %v", j.name, rerr))
		} else if !json.Valid(b) {
			bad = append(bad, fmt.Sprintf("job %s: report is not JSON", j.name))
		}
		mu.Lock()
		defer mu.Unlock()
		runs[j.name] = run
		problems = append(problems, bad...)
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		if !atOnce {
			runJob(j)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runJob(j)
		}()
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	return runs
}

// builds are the CircleCI builds of the jobs that ran (approvals are not
// builds): each job's stored ARTIFACTS_DIR under CircleCI's artifact path.
func builds(runs map[string]jobRun, revision string) []citest.Build {
	var out []citest.Build
	for _, job := range slices.Sorted(maps.Keys(runs)) {
		r := runs[job]
		if r.approval {
			continue
		}
		b := citest.Build{Job: job, Revision: revision, Status: "success", Artifacts: map[string]string{}}
		if !r.ok {
			b.Status = "failed"
		}
		for name, content := range r.files {
			b.Artifacts[strings.TrimPrefix(ci.ArtifactsDir, "/")+"/"+name] = content
		}
		out = append(out, b)
	}
	return out
}

// releaseBump serves the builds and runs the release engineer's command on a
// bumpenvs.yaml holding every contract key at an older release's tags. It
// returns the file's keys afterwards (key -> old, new) and the script's
// error.
func releaseBump(t *testing.T, b []citest.Build, revision string, dev bool) (map[string][2]string, map[string][2]string, error) {
	t.Helper()
	api := citest.Serve(b)
	defer api.Close()
	before := map[string]map[string]string{}
	for _, k := range citest.ContractKeys() {
		before[k] = map[string]string{"old": "determinedai/environments:" + k + "-0.22.0", "new": "determinedai/environments:" + k + "-0.22.1"}
	}
	path := filepath.Join(t.TempDir(), "bumpenvs.yaml")
	text, err := yaml.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	_, bumpErr := citest.Bump(context.Background(), api.URL, path, revision, dev)
	text, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var after map[string]map[string]string
	if err := yaml.Unmarshal(text, &after); err != nil {
		t.Fatal(err)
	}
	flat := func(m map[string]map[string]string) map[string][2]string {
		out := map[string][2]string{}
		for k, v := range m {
			out[k] = [2]string{v["old"], v["new"]}
		}
		return out
	}
	return flat(before), flat(after), bumpErr
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
	for _, wf := range bothWorkflows {
		t.Run(wf.name, func(t *testing.T) {
			h := newHarness(t)
			runs := playWorkflow(t, h, wf.name)
			jobs := 0
			for job, r := range runs {
				if !r.ok {
					t.Errorf("job %s failed:\n%s", job, h.err.String())
				}
				if r.approval {
					continue
				}
				jobs++
				// Each job stores exactly its own file.
				name := strings.TrimSuffix(job, "-dev")
				want := []string{"publish-" + strings.TrimPrefix(name, "build-and-publish-docker-")}
				if got := slices.Sorted(maps.Keys(r.files)); !slices.Equal(got, want) {
					t.Errorf("job %s stores %v, want %v", job, got, want)
				}
			}
			if jobs != 19 {
				t.Errorf("%d publish jobs, want 19", jobs)
			}
			before, after, err := releaseBump(t, builds(runs, "abc1234"), "abc1234", wf.dev)
			if err != nil {
				t.Fatalf("the release tooling refused the run: %v", err)
			}
			want := wantKeys(t, h, runs, wf.dev)
			if len(want) != 2*19 {
				t.Errorf("%d keys expected, want 38 (19 image jobs)", len(want))
			}
			for k, v := range want {
				if after[k] != [2]string{before[k][1], v} {
					t.Errorf("key %s: old/new %q, want %q", k, after[k], [2]string{before[k][1], v})
				}
			}
			if len(after) != len(want) {
				t.Errorf("bumpenvs.yaml has %d keys after the bump, want %d", len(after), len(want))
			}
			// Run one after the other, the jobs that share a base build it
			// once: the later ones find it up to date (10 distinct bases in
			// the two WITH_MPI values, 19 images).
			if n := h.buildCount(); n != 29 {
				t.Errorf("%d builds in %d jobs, want 29: %v", n, jobs, h.builds)
			}
		})
	}
}

// A failed job aborts the whole bump, as the real script does: its job name
// is missing from the successful builds. Nothing is bumped, also not the
// keys of the images that did publish.
func TestReleaseToolingAFailedJobAbortsTheBump(t *testing.T) {
	for _, dev := range []bool{false, true} {
		h := newHarness(t)
		h.fail["tf28-cpu"] = true
		wf := ci.ReleaseWorkflow
		if dev {
			wf = ci.DevWorkflow
		}
		runs := playWorkflow(t, h, wf)
		for job, r := range runs {
			failed := strings.HasPrefix(job, "build-and-publish-docker-tf28-cpu-")
			if r.ok == failed {
				t.Errorf("job %s ok=%v", job, r.ok)
			}
			if failed && len(r.files) != 0 {
				t.Errorf("failed job %s left %v", job, slices.Sorted(maps.Keys(r.files)))
			}
		}
		before, after, err := releaseBump(t, builds(runs, "abc1234"), "abc1234", dev)
		if err == nil || !strings.Contains(err.Error(), "AssertionError") || !strings.Contains(err.Error(), "build-and-publish-docker-tf28-cpu-0") {
			t.Errorf("dev=%v: the release tooling did not refuse a release with a failed job: %v", dev, err)
		}
		if !maps.Equal(before, after) {
			t.Errorf("dev=%v: bumpenvs.yaml changed although the bump was refused", dev)
		}
	}
}

// The two assertions of the real script can fail on this project's runs:
// any other successful job of the commit (a base job as the old generator
// made, a lint job), a job storing a file beside its own (the report), the
// other workflow's names, or a run without --no-cloud-images' promise.
func TestReleaseToolingRefusesAnythingButTheExactSets(t *testing.T) {
	h := newHarness(t)
	runs := playWorkflow(t, h, ci.ReleaseWorkflow)
	good := builds(runs, "abc1234")
	if _, _, err := releaseBump(t, good, "abc1234", false); err != nil {
		t.Fatalf("the untouched run is refused: %v", err)
	}
	// Other commits' builds are not looked at.
	other := append(slices.Clone(good), citest.Build{Job: "lint", Revision: "fff0000", Status: "success"})
	if _, _, err := releaseBump(t, other, "abc1234", false); err != nil {
		t.Errorf("a build of another commit made the bump fail: %v", err)
	}
	for _, c := range []struct {
		name   string
		builds []citest.Build
		dev    bool
		want   string
	}{
		{"a base job", append(slices.Clone(good), citest.Build{Job: "build-and-publish-base-cpu-py-38-base-0", Revision: "abc1234", Status: "success"}), false, "unexpected ['build-and-publish-base-cpu-py-38-base-0']"},
		{"a lint job", append(slices.Clone(good), citest.Build{Job: "lint", Revision: "abc1234", Status: "success"}), false, "unexpected ['lint']"},
		{"the report stored", withArtifact(good, "tmp/publish-report.json", "{}"), false, "unexpected ['publish-report.json']"},
		{"--dev on release jobs", good, true, "missing ['build-and-publish-docker-deepspeed-gpu-0-dev'"},
	} {
		before, after, err := releaseBump(t, c.builds, "abc1234", c.dev)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
		if !maps.Equal(before, after) {
			t.Errorf("%s: bumpenvs.yaml changed although the bump was refused", c.name)
		}
	}
}

// withArtifact adds a file to the first build's artifacts.
func withArtifact(b []citest.Build, path, content string) []citest.Build {
	out := slices.Clone(b)
	arts := maps.Clone(out[0].Artifacts)
	arts[path] = content
	out[0].Artifacts = arts
	return out
}

func TestCIJobsStoreTheContractArtifactName(t *testing.T) {
	ws, err := ci.Workflows()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		for _, j := range w.Jobs {
			if want := ArtifactName(j.Image, j.MPI); j.Artifact != want {
				t.Errorf("%s: artifact %q, want %q", j.Name, j.Artifact, want)
			}
		}
	}
}
