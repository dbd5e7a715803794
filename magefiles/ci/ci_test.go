package ci

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/determined-ai/environments/magefiles/variant"
)

// The parsed config: only what the tests look at.
type config struct {
	Version   any                           `yaml:"version"`
	Executors map[string]executor           `yaml:"executors"`
	Commands  map[string]map[string]any     `yaml:"commands"`
	Jobs      map[string]jobDef             `yaml:"jobs"`
	Workflows map[string]map[string][]wfJob `yaml:"workflows"`
}

type executor struct {
	Machine       map[string]string `yaml:"machine"`
	ResourceClass string            `yaml:"resource_class"`
}

type jobDef struct {
	Executor string `yaml:"executor"`
	Steps    []any  `yaml:"steps"`
}

// wfJob is one entry of a workflow's job list: {name: settings}.
type wfJob map[string]struct {
	Type     string   `yaml:"type"`
	Context  string   `yaml:"context"`
	Requires []string `yaml:"requires"`
	Filters  struct {
		Branches struct {
			Only   any      `yaml:"only"`
			Ignore []string `yaml:"ignore"`
		} `yaml:"branches"`
	} `yaml:"filters"`
}

func parseConfig(t *testing.T) config {
	t.Helper()
	text, err := Config()
	if err != nil {
		t.Fatal(err)
	}
	var c config
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatalf("the generated config is not YAML: %v", err)
	}
	return c
}

// stepNames lists a job's steps: the name of a command step, "run: <command>"
// for a run step, "store_artifacts: <path>".
func stepNames(t *testing.T, j jobDef) []string {
	t.Helper()
	var out []string
	for _, s := range j.Steps {
		switch v := s.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			for k, body := range v {
				m, _ := body.(map[string]any)
				switch k {
				case "run":
					out = append(out, "run: "+m["command"].(string))
				case "store_artifacts":
					out = append(out, "store_artifacts: "+m["path"].(string))
				default:
					out = append(out, k)
				}
			}
		}
	}
	return out
}

// The old matrix, written out from the contract (not from the code): WITH_MPI
// 0 and 1 for eight images, 0 only for ROCm and the two DeepSpeed images.
var (
	mpiBoth = []string{"tf1-cpu", "tf2-cpu", "tf28-cpu", "pt-cpu", "tf1-gpu", "tf2-gpu", "tf28-gpu", "pt-gpu"}
	only0   = []string{"pytorch10-tf27-rocm50", "deepspeed-gpu", "gpt-neox-deepspeed-gpu"}
	// The multi-platform images (WITH_MPI=0 only).
	arm64Images = []string{"tf2-cpu", "tf28-cpu", "pt-cpu"}
)

// wantJobs is the exact job list of a workflow, as the release tooling
// asserts it: name -> requires.
func wantJobs(dev bool) map[string][]string {
	sfx := ""
	var req []string
	if dev {
		sfx, req = "-dev", []string{"request-publish-dev-docker"}
	}
	out := map[string][]string{}
	for _, img := range mpiBoth {
		out["build-and-publish-docker-"+img+"-0"+sfx] = req
		out["build-and-publish-docker-"+img+"-1"+sfx] = req
	}
	for _, img := range only0 {
		out["build-and-publish-docker-"+img+"-0"+sfx] = req
	}
	if dev {
		out["request-publish-dev-docker"] = nil
		out["request-publish-dev-cloud"] = nil
	}
	return out
}

func TestConfigHasExactlyTheOldJobs(t *testing.T) {
	c := parseConfig(t)
	if len(c.Workflows) != 2 {
		t.Fatalf("workflows %v, want publish and publish-dev", keys(c.Workflows))
	}
	defined := 0
	for _, wf := range []struct {
		name string
		dev  bool
	}{{"publish", false}, {"publish-dev", true}} {
		entries, ok := c.Workflows[wf.name]["jobs"]
		if !ok {
			t.Fatalf("no workflow %s", wf.name)
		}
		want := wantJobs(wf.dev)
		got := map[string]bool{}
		for _, e := range entries {
			if len(e) != 1 {
				t.Fatalf("%s: entry %v", wf.name, e)
			}
			for name, set := range e {
				if got[name] {
					t.Errorf("%s: job %s twice", wf.name, name)
				}
				got[name] = true
				wantReq, ok := want[name]
				if !ok {
					t.Errorf("%s: unexpected job %s (the release tooling aborts on any job outside the old set)", wf.name, name)
					continue
				}
				if !slices.Equal(set.Requires, wantReq) {
					t.Errorf("%s: %s requires %v, want %v", wf.name, name, set.Requires, wantReq)
				}
				// Filters: release on main only; development on the other
				// branches with the old ignore list.
				br := set.Filters.Branches
				if wf.dev {
					if br.Only != nil || !slices.Equal(br.Ignore, []string{`/pull\/.*/`, `/release-.*/`, "master", "main"}) {
						t.Errorf("%s: %s filters %+v", wf.name, name, br)
					}
				} else if br.Only != "main" || br.Ignore != nil {
					t.Errorf("%s: %s filters %+v", wf.name, name, br)
				}
				approval := strings.HasPrefix(name, "request-publish-dev-")
				if approval {
					if set.Type != "approval" || set.Context != "" {
						t.Errorf("%s: %s is not a plain approval job: %+v", wf.name, name, set)
					}
					continue
				}
				if set.Type != "" || set.Context != "determined-production" {
					t.Errorf("%s: %s type %q context %q", wf.name, name, set.Type, set.Context)
				}
				if _, ok := c.Jobs[name]; !ok {
					t.Errorf("%s: job %s is not defined", wf.name, name)
				}
				defined++
			}
		}
		for name := range want {
			if !got[name] {
				t.Errorf("%s: job %s missing", wf.name, name)
			}
		}
	}
	// 19 image jobs in each workflow, all defined, nothing else: no base,
	// lint or scheduled job.
	if defined != 38 || len(c.Jobs) != 38 {
		t.Errorf("%d jobs in workflows, %d defined; want 38", defined, len(c.Jobs))
	}
}

func TestEveryJobInstallsLogsInPublishesAndStoresOnlyItsOwnFile(t *testing.T) {
	c := parseConfig(t)
	if len(c.Executors) != 1 {
		t.Errorf("executors %v, want one machine", keys(c.Executors))
	}
	if m := c.Executors["machine"]; m.ResourceClass != "xlarge" || m.Machine["image"] != "ubuntu-2404:2026.05.1" {
		t.Errorf("executor %+v", m)
	}
	for name, j := range c.Jobs {
		dev := strings.HasSuffix(name, "-dev")
		steps := stepNames(t, j)
		trimmed := strings.TrimSuffix(name, "-dev")
		mpi := trimmed[len(trimmed)-1:]
		image := strings.TrimSuffix(strings.TrimPrefix(trimmed, "build-and-publish-docker-"), "-"+mpi)
		want := []string{"checkout", "restore-go-cache", "install-go", "install-docker", "install-buildx", "docker-login"}
		if !dev {
			want = append(want, "ngc-login")
		}
		if mpi == "0" && slices.Contains(arm64Images, image) {
			want = append(want, "arm64-emulation")
		}
		want = append(want, "signing-key", "compile-tool", "builder", "save-go-cache")
		env := "WITH_MPI=" + mpi + " ARTIFACTS_DIR=/tmp/artifacts PUBLISH_REPORT=/tmp/publish-report.json"
		if dev {
			env = "NGC_PUBLISH=0 REGISTRY_REPO=environments-dev " + env
		}
		want = append(want, "run: "+env+" /tmp/envs -v publishImage "+image, "report", "store_artifacts: /tmp/artifacts")
		if !slices.Equal(steps, want) {
			t.Errorf("%s steps\n%q\nwant\n%q", name, steps, want)
		}
		if j.Executor != "machine" {
			t.Errorf("%s runs on %s", name, j.Executor)
		}
	}
	for _, cmd := range []string{"restore-go-cache", "install-go", "install-docker", "install-buildx", "save-go-cache", "docker-login", "ngc-login", "arm64-emulation", "signing-key", "compile-tool", "builder", "report"} {
		if _, ok := c.Commands[cmd]; !ok {
			t.Errorf("command %s not defined", cmd)
		}
	}
	if len(c.Commands) != 12 {
		t.Errorf("commands %v, want the 12 the jobs use", keys(c.Commands))
	}
	text, _ := Config()
	for _, want := range []string{
		`docker login -u "$DOCKER_USER" --password-stdin`,
		`docker login -u "$NGC_API_USERNAME" --password-stdin "$host"`,
		"tonistiigi/binfmt@sha256:",
		"go mod download -json \"$mod\"",
		"h1:",
		"GOFLAGS=-trimpath go run magefile.go -compile /tmp/envs",
		"command: /tmp/envs builder",
		`export SIGNING_KEY=`,
		"docker-ce='5:",
		`cp "$bin" "$HOME/.docker/cli-plugins/docker-buildx"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	for _, gone := range []string{"nvidia", "gpu.", "build-and-publish-base-", "ubuntu-2004"} {
		if strings.Contains(text, gone) {
			t.Errorf("config still has %q", gone)
		}
	}
}

// The committed .circleci/config.yml is the generated one.
func TestCommittedConfigIsGenerated(t *testing.T) {
	want, err := Config()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", ConfigPath)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) == want {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s differs from `go run magefile.go ciConfig` at line %d:\n  committed: %q\n  generated: %q\nregenerate: go run magefile.go ciConfig > %s", ConfigPath, i+1, gl, wl, ConfigPath)
		}
	}
}

func TestMatrixVariantsWithOFIOrNCCLNeverEnterCI(t *testing.T) {
	ci := 0
	for _, c := range variant.Matrix() {
		if !c.CI {
			continue
		}
		ci++
		if _, err := comboJobs(c, false); err != nil {
			t.Error(err)
		}
	}
	if ci != 2 {
		t.Errorf("%d CI variants, want 2 (WITH_MPI 0 and 1)", ci)
	}
	// The guard itself: an OFI variant is refused, naming the collision.
	_, err := comboJobs(variant.Combo{Name: "mpi-ofi", Env: map[string]string{"WITH_MPI": "1", "WITH_OFI": "1"}, CI: true}, false)
	if err == nil || !strings.Contains(err.Error(), "collide") {
		t.Errorf("an OFI variant in CI: %v", err)
	}
}

func TestMatrixLines(t *testing.T) {
	lines, err := MatrixLines()
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 19 {
		t.Errorf("%d lines, want 19 (one per image job)", len(lines))
	}
	for _, want := range []string{
		"build-and-publish-docker-tf2-gpu-1 WITH_MPI=1 tf2-gpu (base gpu-cuda-113-base) linux/amd64",
		"build-and-publish-docker-pt-cpu-0 WITH_MPI=0 pt-cpu (base cpu-py-38-base) linux/amd64,linux/arm64",
		"build-and-publish-docker-pt-cpu-1 WITH_MPI=1 pt-cpu (base cpu-py-38-base) linux/amd64",
		"build-and-publish-docker-pytorch10-tf27-rocm50-0 WITH_MPI=0 pytorch10-tf27-rocm50 linux/amd64",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %q in\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The CI report path is the documented default: beside ARTIFACTS_DIR.
func TestCIReportIsTheDefaultBesideArtifactsDir(t *testing.T) {
	if got := variant.DefaultReport(ArtifactsDir); got != ReportPath {
		t.Errorf("CI writes the report to %s, the default beside %s is %s", ReportPath, ArtifactsDir, got)
	}
}
