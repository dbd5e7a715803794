//go:build e2e

package e2e

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/ci"
)

// ciStep finds a job of the generated config and splits its publish step
// into its settings and the tool's arguments (what follows the compiled
// tool, ci.Tool). The /tmp paths of the CI machine are moved to machine.
func ciStep(t *testing.T, job, machine string) (map[string]string, []string) {
	t.Helper()
	ws, err := ci.Workflows()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		for _, j := range w.Jobs {
			if j.Name != job {
				continue
			}
			words := strings.Fields(j.Command())
			env := map[string]string{}
			for len(words) > 0 && strings.Contains(words[0], "=") {
				k, v, _ := strings.Cut(words[0], "=")
				if strings.HasPrefix(v, "/tmp/") {
					v = filepath.Join(machine, strings.TrimPrefix(v, "/tmp/"))
				}
				env[k] = v
				words = words[1:]
			}
			if len(words) < 2 || words[0] != ci.Tool {
				t.Fatalf("job %s: step %q does not run the tool", job, j.Command())
			}
			return env, words[1:]
		}
	}
	t.Fatalf("no job %s in the generated config", job)
	return nil, nil
}

// TestReleaseJobsLeaveOnlyContractFiles runs the publish steps of jobs of
// the generated workflows with the real tool on the real stack, each on a
// "machine" of its own (a directory standing for its /tmp): tf1-cpu's job
// (with files of an earlier run in its ARTIFACTS_DIR) publishes its base and
// the image; the same job run again (CircleCI's "rerun") finds both up to
// date; then the development job of the ROCm image with PUBLISH_REPORT
// unset. Each ARTIFACTS_DIR must hold exactly the job's contract file and
// the report must be beside it. Then an ARTIFACTS_DIR inside the checkout
// is refused before anything is built, and the checkout stays clean.
func TestReleaseJobsLeaveOnlyContractFiles(t *testing.T) {
	sc := newScenario(t, nil, nil)
	delete(sc.env, "ARTIFACTS_DIR") // every job sets its own
	hub := stk.Hub + "/determinedai/environments:py-3.7-pytorch-1.7-tf-1.15-cpu-"
	want := map[string]string{"publish-tf1-cpu-0": "tf1_cpu_0_hashed: " + hub + sc.hash + "\ntf1_cpu_0_versioned: " + hub + testVersion + "\n"}
	if kv, err := parseYAMLMapping(want["publish-tf1-cpu-0"]); err != nil || len(kv) != 2 {
		t.Errorf("artifact is not a two-key YAML mapping: %v %v", kv, err)
	}

	var rep report
	for i, wantResult := range []string{"built", "up-to-date"} {
		m := t.TempDir()
		env, args := ciStep(t, "build-and-publish-docker-tf1-cpu-0", m)
		arts := filepath.Join(m, "artifacts")
		if i == 0 {
			writeFile(t, filepath.Join(arts, "publish-tf1-cpu-0"), "tf1_cpu_0_hashed: stale\n")
			writeFile(t, filepath.Join(arts, reportName), `{"ok": true}`)
		}
		if r := sc.run(env, args...); r.code != 0 {
			t.Fatalf("tf1-cpu job (run %d): exit %d", i+1, r.code)
		}
		if got := readArtifacts(t, arts); !maps.Equal(got, want) {
			t.Errorf("tf1-cpu job's ARTIFACTS_DIR (run %d): %v, want %v", i+1, got, want)
		}
		if got, _ := filepath.Glob(filepath.Join(m, "*")); !slices.Equal(got, []string{arts, filepath.Join(m, "publish-report.json")}) {
			t.Errorf("the job's machine holds %v, want artifacts/ and publish-report.json beside it", got)
		}
		var ok bool
		rep, ok = readReport(t, arts)
		if !ok || !rep.OK {
			t.Fatalf("tf1-cpu job report (run %d): %+v", i+1, rep)
		}
		if b := rep.byName(); len(b) != 2 || b["cpu-py-37-base"].Result != wantResult || b["tf1-cpu"].Result != wantResult || !b["tf1-cpu"].Verified {
			t.Errorf("run %d of the job: base and image not %s: %+v", i+1, wantResult, rep.Images)
		}
	}
	if d := headDigest(t, hub+sc.hash); d == "" || d != rep.byName()["tf1-cpu"].Digest {
		t.Errorf("%s%s is %q in the registry, the report says %q", hub, sc.hash, d, rep.byName()["tf1-cpu"].Digest)
	}

	// A development job, report location left to its default.
	m3 := t.TempDir()
	env, args := ciStep(t, "build-and-publish-docker-pytorch10-tf27-rocm50-0-dev", m3)
	if env["NGC_PUBLISH"] != "0" || env["REGISTRY_REPO"] != "environments-dev" {
		t.Errorf("development job settings %v", env)
	}
	delete(env, "PUBLISH_REPORT")
	if r := sc.run(env, args...); r.code != 0 {
		t.Fatalf("ROCm development job: exit %d", r.code)
	}
	devTag := stk.Hub + "/determinedai/environments-dev:rocm-5.0-pytorch-1.10-tf-2.7-rocm-"
	want = map[string]string{"publish-pytorch10-tf27-rocm50-0": "pytorch10_tf27_rocm50_0_hashed: " + devTag + sc.hash + "\npytorch10_tf27_rocm50_0_versioned: " + devTag + testVersion + "\n"}
	if got := readArtifacts(t, filepath.Join(m3, "artifacts")); !maps.Equal(got, want) {
		t.Errorf("ROCm development job's ARTIFACTS_DIR: %v, want %v", got, want)
	}
	if rep, ok := readReport(t, filepath.Join(m3, "artifacts")); !ok || !rep.OK {
		t.Errorf("no OK report beside the development job's ARTIFACTS_DIR: %+v", rep)
	}

	// ARTIFACTS_DIR inside the checkout: refused up front.
	r := sc.run(map[string]string{"ARTIFACTS_DIR": filepath.Join(sc.dir, "artifacts")}, "publishImage", "tf1-cpu")
	if r.code == 0 || !strings.Contains(r.out, "is inside the checkout") || strings.Contains(r.out, "building tf1-cpu") {
		t.Errorf("ARTIFACTS_DIR inside the checkout: exit %d\n%s", r.code, r.tail(20))
	}
	if st := sc.git("status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("the checkout is dirty after the runs:\n%s", st)
	}
}
