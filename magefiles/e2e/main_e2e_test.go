//go:build e2e

// The e2e suite runs the compiled tool against a real buildx + BuildKit +
// registry stack (package stack) with stand-in recipes of the same shape as
// the real ones (testdata/recipes). It needs root; see README.md.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/stack"
	"github.com/determined-ai/environments/magefiles/variant"
)

// Suite-wide state, set up once by TestMain.
var (
	stk       *stack.Stack
	stackWork string // the stack's WorkDir (registry storage lives below it)
	suiteTmp  string // removed at the end of the suite
	toolBin   string // the compiled tool (mage -compile)
	rootDir   string // the checkout (real recipes, magefile.go)
	targets   string // `envs -l` output
)

// testVersion is the VERSION of every scenario repository.
const testVersion = "0.99.1"

func TestMain(m *testing.M) { os.Exit(mainE2E(m)) }

func mainE2E(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the e2e suite must run as root: it starts buildkitd (runc containers), "+
			"registers qemu-aarch64 with binfmt_misc and installs Debian packages; run it as root, e.g. "+
			"sudo -E go test -tags e2e ./magefiles/e2e/")
		return 1
	}
	tmp, err := os.MkdirTemp("", "envs-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	suiteTmp = tmp
	code, err := setUp(tmp, m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: setting up:", err)
		code = 1
	}
	if code == 0 {
		os.RemoveAll(tmp)
	} else {
		// The scenarios' repositories, tool logs and the stack's logs.
		fmt.Fprintf(os.Stderr, "e2e: kept %s for inspection\n", tmp)
	}
	return code
}

type lineLog struct{ prefix string }

func (l lineLog) Write(p []byte) (int, error) {
	fmt.Fprintf(os.Stderr, "%s%s\n", l.prefix, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func setUp(tmp string, m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var err error
	if rootDir, err = findRoot(); err != nil {
		return 0, err
	}
	log := lineLog{"e2e stack: "}
	start := time.Now()
	// With a Docker Engine: local builds load their images into it.
	tools, err := stack.Provision(ctx, stack.Options{Log: log, Engine: true})
	if err != nil {
		return 0, fmt.Errorf("provisioning the stack: %w", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: provisioned in %s\n", time.Since(start).Round(time.Millisecond))
	stackWork = filepath.Join(tmp, "stack")
	stk, err = stack.Start(ctx, tools, stack.Options{WorkDir: stackWork, Log: log, Engine: true})
	if err != nil {
		return 0, fmt.Errorf("starting the stack: %w", err)
	}
	defer func() {
		if err := stk.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stopping the stack:", err)
		}
	}()
	if err := stk.SeedBaseImages(ctx, nil); err != nil {
		return 0, err
	}
	if err := setUpSupplyChain(ctx, tmp); err != nil {
		return 0, err
	}
	start = time.Now()
	// E2E_TOOL runs the suite against an already compiled tool instead.
	if toolBin = os.Getenv("E2E_TOOL"); toolBin == "" {
		toolBin = filepath.Join(tmp, "envs")
		cmd := exec.CommandContext(ctx, "go", "run", "magefile.go", "-compile", toolBin)
		cmd.Dir = rootDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("compiling the tool (go run magefile.go -compile %s in %s): %w\n%s", toolBin, rootDir, err, out)
		}
	}
	out, err := exec.CommandContext(ctx, toolBin, "-l").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s -l: %w\n%s", toolBin, err, out)
	}
	targets = string(out)
	fmt.Fprintf(os.Stderr, "e2e: tool compiled in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run(), nil
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "magefile.go")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no magefile.go and go.mod above %s", dir)
		}
	}
}

// requireTarget fails the test when the tool has no such target.
func requireTarget(t *testing.T, name string) {
	t.Helper()
	var names []string
	for _, line := range strings.Split(targets, "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue // the description and the "Targets:" heading
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		n := strings.TrimSuffix(f[0], "*")
		if strings.EqualFold(n, name) {
			return
		}
		names = append(names, n)
	}
	t.Fatalf("the tool has no %q target; it has %s", name, strings.Join(names, ", "))
}

// scenario is one temporary git repository with a copy of the stand-in
// recipes, in which the tool runs.
type scenario struct {
	t         *testing.T
	id        string // unique; also in E2E_SCENARIO of every process the tool starts
	dir       string // the repository (RECIPES_DIR=.)
	artifacts string // ARTIFACTS_DIR
	hash      string
	env       map[string]string // scenario settings on top of the suite's
}

// newScenario makes a repository: VERSION, the stand-in recipes, a nonce file
// (so BuildKit's cache never hides a RUN of another scenario), whatever
// prepare adds, and one commit.
func newScenario(t *testing.T, env map[string]string, prepare func(dir string)) *scenario {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	sc := &scenario{t: t, id: strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + hex.EncodeToString(rnd[:])}
	// Not t.TempDir: TestPublishAgainIsNoOp reuses TestPublishDefault's.
	base, err := os.MkdirTemp(suiteTmp, "scenario-")
	if err != nil {
		t.Fatal(err)
	}
	sc.dir = filepath.Join(base, "repo")
	sc.artifacts = filepath.Join(base, "artifacts")
	if err := os.CopyFS(sc.dir, os.DirFS(filepath.Join(rootDir, "magefiles", "e2e", standInRecipes))); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sc.dir, "VERSION"), testVersion+"\n")
	writeFile(t, filepath.Join(sc.dir, "dockerfile_scripts", "e2e-scenario"), sc.id+"\n")
	if prepare != nil {
		prepare(sc.dir)
	}
	sc.git("init", "-q")
	sc.git("add", "-A")
	sc.git("commit", "-q", "-m", "e2e scenario "+sc.id)
	sc.hash = strings.TrimSpace(sc.git("rev-parse", "--short", "HEAD"))
	sc.env = map[string]string{
		"DOCKERHUB_REGISTRY": stk.Hub + "/determinedai",
		"NGC_REGISTRY":       stk.NGC + "/ngc",
		"ARTIFACTS_DIR":      sc.artifacts,
		"JOBS":               "2",
		"NO_COLOR":           "1",
		"RECIPES_DIR":        ".",
		"REGISTRY_MIRRORS":   "docker.io=" + stk.Mirror,
		"SIGNING_KEY":        signingKey,
		"SBOM_GENERATOR":     sbomGenerator,
	}
	for k, v := range env {
		sc.env[k] = v
	}
	return sc
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (sc *scenario) git(args ...string) string {
	sc.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = sc.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.invalid",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+sc.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		sc.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// toolEnv is the environment of the tool: ours without any setting the tool
// reads, the stack's, the scenario's, then extra (KEY=VALUE, may be empty).
func toolEnv(settings map[string]string, extra ...string) []string {
	skip := map[string]bool{"NO_COLOR": true, "DOCKER_CONFIG": true, "DOCKER_HOST": true, "E2E_SCENARIO": true}
	for _, v := range variant.Variables {
		skip[v] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !skip[k] {
			env = append(env, kv)
		}
	}
	env = append(env, stk.Env()...)
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+settings[k])
	}
	return append(env, extra...)
}

// settings are the scenario's settings with overrides (a "" value sets the
// variable to the empty string, as NGC_PUBLISH= does).
func (sc *scenario) settings(over map[string]string) map[string]string {
	m := map[string]string{"E2E_SCENARIO": sc.id}
	for k, v := range sc.env {
		m[k] = v
	}
	for k, v := range over {
		m[k] = v
	}
	return m
}

// result is one run of the tool.
type result struct {
	out  string // stdout and stderr, interleaved
	code int
	dur  time.Duration
}

func (r result) tail(n int) string {
	lines := strings.Split(strings.TrimRight(r.out, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// syncBuffer is a bytes.Buffer safe for a concurrent reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start starts the tool in the scenario repository.
func (sc *scenario) start(ctx context.Context, over map[string]string, args ...string) (*exec.Cmd, *syncBuffer) {
	sc.t.Helper()
	var out syncBuffer
	cmd := exec.CommandContext(ctx, toolBin, args...)
	cmd.Dir = sc.dir
	cmd.Env = toolEnv(sc.settings(over))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		sc.t.Fatal(err)
	}
	return cmd, &out
}

// run runs the tool to its end and logs the end of its output.
func (sc *scenario) run(over map[string]string, args ...string) result {
	sc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	cmd, out := sc.start(ctx, over, args...)
	err := cmd.Wait()
	r := result{out: out.String(), dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		sc.t.Fatalf("envs %s: %v\n%s", strings.Join(args, " "), err, r.tail(80))
	}
	logPath := filepath.Join(filepath.Dir(sc.dir), fmt.Sprintf("envs-%s-%d.log", strings.Join(args, "-"), time.Now().UnixNano()))
	_ = os.WriteFile(logPath, []byte(r.out), 0o644)
	var words []string
	for _, k := range slices.Sorted(maps.Keys(sc.settings(nil))) {
		if k != "E2E_SCENARIO" && k != "NO_COLOR" {
			words = append(words, k+"="+sc.settings(over)[k])
		}
	}
	for k, v := range over {
		if _, ok := sc.env[k]; !ok {
			words = append(words, k+"="+v)
		}
	}
	sc.t.Logf("%s envs %s: exit %d in %s (log %s); end of output:\n%s", strings.Join(words, " "), strings.Join(args, " "),
		r.code, r.dur.Round(100*time.Millisecond), logPath, r.tail(30))
	return r
}

// plan is what the tool should do in this scenario: the publish plan of the
// whole catalog under the scenario's settings plus over, every image pinned
// to the digests its base and external images have in the registries now
// (see pinned).
func (sc *scenario) plan(over map[string]string) (variant.Settings, []plan.Spec) {
	sc.t.Helper()
	s, specs := sc.unpinnedPlan(over)
	return s, pinned(sc.t, specs)
}

// unpinnedPlan is the plan before any digest is known: what `build` builds.
// Its tags, NGC tags and platforms are the contract's (contract_test.go),
// and the planner's must agree with them and with the contract's build
// arguments; the rest (argv, inputs digests) is the planner's.
func (sc *scenario) unpinnedPlan(over map[string]string) (variant.Settings, []plan.Spec) {
	sc.t.Helper()
	m := sc.settings(over)
	version, err := os.ReadFile(filepath.Join(sc.dir, "VERSION"))
	if err != nil {
		sc.t.Fatal(err)
	}
	s, err := variant.Parse(variant.MapLookup(m), string(version), sc.hash)
	if err != nil {
		sc.t.Fatal(err)
	}
	specs, err := plan.Plan(s, plan.Request{Images: catalog.Names(), Mode: plan.Publish, Sources: build.NewSources(sc.dir)})
	if err != nil {
		sc.t.Fatal(err)
	}
	return s, fromContract(sc.t, specs, contractExpectations(sc.t, m, string(version), sc.hash))
}

// leftovers lists the processes whose environment has E2E_SCENARIO=id.
func leftovers(id string) []string {
	var out []string
	want := []byte("E2E_SCENARIO=" + id + "\x00")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name() == "self" || strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, e.Name()+": "+strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
	}
	return out
}

// readArtifacts returns the files of dir (ARTIFACTS_DIR). The report is not
// among them: it goes beside the directory.
func readArtifacts(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("ARTIFACTS_DIR %s holds a directory %s", dir, e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}
