//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/determined-ai/environments/magefiles/ci"
)

// The job runner: it runs the jobs of the generated .circleci/config.yml
// step by step, as CircleCI's machine executor does, each job on a "machine"
// of its own (a directory with its own HOME, /tmp and BASH_ENV, sharing the
// stack's Docker Engine and BuildKit). The steps that reach the internet in
// CircleCI run here against local stand-ins (standIns).

// ciStepDef is one primitive step of a job, its commands expanded.
type ciStepDef struct {
	kind    string // checkout, run, restore_cache, save_cache, store_artifacts
	from    string // the command it came from ("" for a step of the job itself)
	name    string
	command string
	when    string
	path    string   // store_artifacts
	paths   []string // save_cache
}

// ciFile is the parsed config.
type ciFile struct {
	Commands map[string]struct {
		Steps []any `yaml:"steps"`
	} `yaml:"commands"`
	Jobs map[string]struct {
		Steps []any `yaml:"steps"`
	} `yaml:"jobs"`
	Workflows map[string]struct {
		Jobs []map[string]struct {
			Type    string `yaml:"type"`
			Context string `yaml:"context"`
		} `yaml:"jobs"`
	} `yaml:"workflows"`
}

func parseCI(t *testing.T) ciFile {
	t.Helper()
	text, err := ci.Config()
	if err != nil {
		t.Fatal(err)
	}
	var f ciFile
	if err := yaml.Unmarshal([]byte(text), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// steps expands a job's steps (command references included) in order.
func (f ciFile) steps(t *testing.T, job string) []ciStepDef {
	t.Helper()
	j, ok := f.Jobs[job]
	if !ok {
		t.Fatalf("no job %s", job)
	}
	var out []ciStepDef
	var expand func(steps []any, from string)
	expand = func(steps []any, from string) {
		for _, s := range steps {
			switch v := s.(type) {
			case string:
				if v == "checkout" {
					out = append(out, ciStepDef{kind: "checkout", from: from})
					continue
				}
				c, ok := f.Commands[v]
				if !ok {
					t.Fatalf("job %s: step %q is neither checkout nor a command of the config", job, v)
				}
				expand(c.Steps, v)
			case map[string]any:
				for kind, body := range v {
					m, _ := body.(map[string]any)
					d := ciStepDef{kind: kind, from: from}
					d.name, _ = m["name"].(string)
					d.command, _ = m["command"].(string)
					d.when, _ = m["when"].(string)
					d.path, _ = m["path"].(string)
					if ps, ok := m["paths"].([]any); ok {
						for _, p := range ps {
							d.paths = append(d.paths, p.(string))
						}
					}
					out = append(out, d)
				}
			}
		}
	}
	expand(j.Steps, "")
	return out
}

// workflowJobs are the jobs of a workflow that are builds (not approvals).
func (f ciFile) workflowJobs(workflow string) []string {
	var out []string
	for _, e := range f.Workflows[workflow].Jobs {
		for name, set := range e {
			if set.Type != "approval" {
				out = append(out, name)
			}
		}
	}
	return out
}

// machineSpec is what every job's machine gets.
type machineSpec struct {
	checkout string            // the repository CircleCI checks out
	context  map[string]string // the CircleCI context (credentials) and the registries' hosts
	cacheDir string            // stands in for CircleCI's cache store
	builder  string            // the BuildKit address the machine's docker-container builder stands in for
	// warmUp stops the job before its publish step (it only fills caches).
	warmUp bool
	// gate, when set, is called once per job: right before its publish
	// step, or at its end when it never got there.
	gate func()
}

// jobResult is what a job left.
type jobResult struct {
	ok        bool
	failed    string            // the first step that failed
	ran       []string          // steps run, "command/name"
	artifacts map[string]string // stored: path relative to the artifact root -> content
	out       string
	took      map[string]time.Duration // per step (command name, or the job's own step)
}

// standIn replaces a step that reaches the internet in CircleCI. pins must
// all be in the real script: the stand-in does not weaken what is pinned.
type standIn struct {
	pins   []string
	script string
}

func standIns() map[string]standIn {
	return map[string]standIn{
		// Docker's apt repository: here the stack's Docker Engine is the
		// machine's; the job needs an engine and a CLI that answer.
		"install-docker": {
			pins:   []string{ci.DockerAptVersion, ci.DockerKeyFingerprint, "signed-by=", "docker version --format"},
			script: "set -euo pipefail\ndocker version --format '{{.Server.Version}} {{.Client.Version}}'\n",
		},
		// The binfmt image (a privileged container, which cannot start
		// here): the stack registered qemu-aarch64 already; the real
		// step's own check runs.
		"arm64-emulation": {
			pins:   []string{ci.BinfmtImage, "--install arm64"},
			script: "set -euo pipefail\ngrep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64\n",
		},
	}
}

// runJob runs one job's steps on a fresh machine under dir. before runs
// just before the step of the command it names (the machine image's state).
func runJob(ctx context.Context, t *testing.T, f ciFile, job string, m machineSpec, dir string) jobResult {
	t.Helper()
	home, tmp, project := filepath.Join(dir, "home"), filepath.Join(dir, "tmp"), filepath.Join(dir, "project")
	bashEnv := filepath.Join(dir, "bash_env")
	for _, d := range []string{home, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(bashEnv, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"HOME=" + home, "TMPDIR=" + tmp, "BASH_ENV=" + bashEnv, "CI=true", "CIRCLECI=true", "CIRCLE_JOB=" + job,
		// The machine image's Go (to bootstrap from), docker CLI, git, bash.
		"PATH=" + filepath.Dir(mustLookPath(t, "go")) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"DOCKER_HOST=" + stk.DockerHost, "NO_COLOR=1",
	}
	for k, v := range m.context {
		env = append(env, k+"="+v)
	}
	// Each machine has its own /tmp.
	local := func(s string) string { return strings.ReplaceAll(s, "/tmp/", tmp+"/") }
	res := jobResult{ok: true, artifacts: map[string]string{}, took: map[string]time.Duration{}}
	var log bytes.Buffer
	stand := standIns()
	builderMade := false
	var gated sync.Once
	gate := func() {
		if m.gate != nil {
			gated.Do(m.gate)
		}
	}
	defer gate()
	for _, s := range f.steps(t, job) {
		label := s.from + "/" + s.kind
		if s.name != "" {
			label = s.from + "/" + s.name
		}
		if !res.ok && s.when != "always" {
			continue
		}
		if s.from == "" && s.kind == "run" {
			if m.warmUp {
				break
			}
			gate()
		}
		res.ran = append(res.ran, label)
		began := time.Now()
		var err error
		switch s.kind {
		case "checkout":
			err = runIn(ctx, "", env, &log, "git", "clone", "-q", m.checkout, project)
		case "restore_cache":
			// CircleCI's cache store: the paths the config saves, linked to
			// the runner's caches (the Go caches are the host's).
			err = linkCaches(f, home, m.cacheDir)
		case "save_cache":
			// The store is shared already.
		case "run":
			script := s.command
			if si, ok := stand[s.from]; ok {
				for _, p := range si.pins {
					if !strings.Contains(script, p) {
						t.Errorf("job %s: step %s does not pin %q", job, s.from, p)
					}
				}
				script = si.script
			}
			if s.from == "builder" && !builderMade {
				// The machine's docker-container builder (which cannot start
				// here) is the stack's BuildKit, under the name the tool uses.
				builderMade = true
				if err = runIn(ctx, project, env, &log, "docker", "buildx", "create", "--name", "determined-environments", "--driver", "remote", m.builder); err != nil {
					break
				}
			}
			fmt.Fprintf(&log, "--- %s: %s\n", job, label)
			err = runIn(ctx, project, env, &log, "bash", "-eo", "pipefail", "-c", local(script))
		case "store_artifacts":
			root := local(s.path)
			err = filepath.WalkDir(root, func(p string, d os.DirEntry, werr error) error {
				if werr != nil || d.IsDir() {
					return werr
				}
				b, rerr := os.ReadFile(p)
				if rerr != nil {
					return rerr
				}
				// CircleCI lists an artifact under its path without the
				// leading slash: tmp/artifacts/publish-x-0.
				rel, rerr := filepath.Rel(tmp, p)
				res.artifacts["tmp/"+rel] = string(b)
				return rerr
			})
		default:
			err = fmt.Errorf("step kind %s unknown to the runner", s.kind)
		}
		key := s.from
		if key == "" {
			key = s.kind
		}
		res.took[key] += time.Since(began)
		if err != nil && res.ok {
			res.ok, res.failed = false, label
			fmt.Fprintf(&log, "--- %s: step %s failed: %v\n", job, label, err)
		}
	}
	res.out = log.String()
	return res
}

// linkCaches makes every path the config's save_cache steps save exist in
// home as a link into the runner's cache: ~/go/pkg/mod and ~/.cache/go-build
// to the host's Go caches, the others to cacheDir.
func linkCaches(f ciFile, home, cacheDir string) error {
	gomod, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return err
	}
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return err
	}
	for _, c := range f.Commands {
		for _, s := range c.Steps {
			m, _ := s.(map[string]any)
			sc, _ := m["save_cache"].(map[string]any)
			paths, _ := sc["paths"].([]any)
			for _, p := range paths {
				rel := strings.TrimPrefix(p.(string), "~/")
				target := filepath.Join(cacheDir, strings.ReplaceAll(rel, "/", "_"))
				switch rel {
				case "go/pkg/mod":
					target = strings.TrimSpace(string(gomod))
				case ".cache/go-build":
					target = strings.TrimSpace(string(gocache))
				}
				if err := os.MkdirAll(target, 0o755); err != nil {
					return err
				}
				link := filepath.Join(home, rel)
				if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
					return err
				}
				if err := os.Symlink(target, link); err != nil && !os.IsExist(err) {
					return err
				}
			}
		}
	}
	return nil
}

func runIn(ctx context.Context, dir string, env []string, log *bytes.Buffer, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	log.Write(out.Bytes())
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv[:min(len(argv), 3)], " "), err)
	}
	return nil
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runJobs runs jobs on machines under dir: the steps before the publish
// step a few jobs at a time (prepSlots: they compile and copy, CPU the
// machine does not have 19 times over), then every publish step at once,
// as CircleCI starts the jobs of a workflow together.
func runJobs(ctx context.Context, t *testing.T, f ciFile, jobs []string, m machineSpec, dir string) map[string]jobResult {
	t.Helper()
	const prepSlots = 3
	out := map[string]jobResult{}
	var mu sync.Mutex
	var wg, ready sync.WaitGroup
	slots, start := make(chan struct{}, prepSlots), make(chan struct{})
	ready.Add(len(jobs))
	go func() {
		ready.Wait()
		close(start)
	}()
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jm := m
			slots <- struct{}{}
			jm.gate = func() {
				<-slots
				ready.Done()
				<-start
			}
			began := time.Now()
			r := runJob(ctx, t, f, job, jm, filepath.Join(dir, job))
			mu.Lock()
			out[job] = r
			mu.Unlock()
			t.Logf("job %s: ok=%v in %s", job, r.ok, time.Since(began).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	total := map[string]time.Duration{}
	for _, r := range out {
		for k, d := range r.took {
			total[k] += d
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(total)) {
		parts = append(parts, fmt.Sprintf("%s %s", k, total[k].Round(time.Second)))
	}
	t.Logf("step time summed over the jobs: %s", strings.Join(parts, ", "))
	return out
}
