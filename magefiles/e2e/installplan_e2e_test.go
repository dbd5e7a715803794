//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/variant"
)

// installPlanVariants are the variants the install-plan test builds.
var installPlanVariants = []struct {
	name string
	env  map[string]string
}{
	{"default", map[string]string{}},
	{"mpi", map[string]string{"WITH_MPI": "1"}},
	{"mpi-ofi", map[string]string{"WITH_MPI": "1", "WITH_OFI": "1"}},
	{"mpi-nccl", map[string]string{"WITH_MPI": "1", "WITH_NCCL": "1"}},
	{"mpi-ofi-nccl", map[string]string{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1"}},
}

// installBuild is one planned build of the install-plan test.
type installBuild struct {
	variant  string
	settings variant.Settings
	spec     plan.Spec
	argv     []string
	log      string
	done     chan struct{}
	err      error
	dur      time.Duration
}

// TestInstallPlan builds the real Dockerfile.cpu and Dockerfile.gpu for
// every catalog image in every variant (default, WITH_MPI, WITH_MPI
// WITH_OFI, WITH_MPI WITH_NCCL, and WITH_MPI WITH_OFI WITH_NCCL as CI
// publishes it), linux/arm64 included where planned, with the tool's own
// argv (plan.Plan, PUSH) plus one --build-context per external base that
// swaps in an install-plan stand-in: busybox, static bash and recording
// stand-ins for apt-get, pip (conda's python), conda, curl, wget, git, make,
// configure, gcc... so every script's own logic runs and leaves a log of what
// the image would install. It compares each image's log, files and config
// (ENV, ENTRYPOINT, CMD, USER, labels) with the previous images' contents
// (../shared/reference/image-contents.md, encoded in installplan_expect).
func TestInstallPlan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	tools, err := loadInstallPlanTools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := exec.CommandContext(ctx, "git", "-C", rootDir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse in %s: %v", rootDir, err)
	}
	version, err := os.ReadFile(filepath.Join(rootDir, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}

	logDir := filepath.Join(suiteTmp, "installplan")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	standins := map[string]string{} // FROM value -> install-plan stand-in on the Mirror
	var builds []*installBuild
	byKey := map[string]*installBuild{}
	for _, v := range installPlanVariants {
		env := map[string]string{
			"DOCKERHUB_REGISTRY": stk.Hub + "/installplan-" + v.name,
			"NGC_PUBLISH":        "",
			"PUSH":               "1",
			"RECIPES_DIR":        rootDir,
			"BUILDX_BUILDER":     stk.Builder,
			// The planned publish argv attests an SBOM: the suite's
			// generator stand-in on the Mirror, as every scenario uses.
			"SBOM_GENERATOR": sbomGenerator,
		}
		for k, val := range v.env {
			env[k] = val
		}
		s, err := variant.Parse(variant.MapLookup(env), string(version), string(hash))
		if err != nil {
			t.Fatal(err)
		}
		specs, err := plan.Plan(s, plan.Request{Images: catalog.Names(), Mode: plan.Publish})
		if err != nil {
			t.Fatal(err)
		}
		specs = fromContract(t, specs, contractExpectations(t, env, string(version), string(hash)))
		for _, sp := range specs {
			b := &installBuild{variant: v.name, settings: s, spec: sp, done: make(chan struct{}),
				log: filepath.Join(logDir, v.name+"-"+sp.Image.Name+".log")}
			if !slices.Contains(sp.Argv, "--push") {
				t.Fatalf("%s (%s): the planned build does not push: %v", sp.Image.Name, v.name, sp.Argv)
			}
			var extra []string
			if sp.Base == "" {
				from := buildArg(sp, "BASE_IMAGE")
				if standins[from] == "" {
					if standins[from], err = pushInstallPlanBase(ctx, from, tools); err != nil {
						t.Fatal(err)
					}
				}
				extra = append(extra, "--build-context", from+"=docker-image://"+standins[from])
			}
			// The tool's argv with the extra flags before the context directory.
			n := len(sp.Argv)
			b.argv = append(append(slices.Clone(sp.Argv[:n-1]), extra...), sp.Argv[n-1])
			builds = append(builds, b)
			byKey[v.name+"/"+sp.Image.Name] = b
		}
	}
	t.Logf("%d builds planned, %d install-plan stand-in bases pushed (%s)", len(builds), len(standins), time.Since(start).Round(time.Millisecond))

	// Run them: a build waits for its base's; at most three at once (a
	// stand-in RUN step is mostly container start-up, so BuildKit overlaps
	// them well on two cores).
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for _, b := range builds {
		wg.Add(1)
		go func(b *installBuild) {
			defer wg.Done()
			defer close(b.done)
			if b.spec.Base != "" {
				base := byKey[b.variant+"/"+b.spec.Base]
				<-base.done
				if base.err != nil {
					b.err = fmt.Errorf("its base %s failed", b.spec.Base)
					return
				}
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			b.err = runBuild(ctx, b.argv, b.log)
			// The registry refuses concurrent uploads of one blob to one
			// repository now and then ("blob unknown to registry"); the
			// retry reuses BuildKit's cache and only pushes again.
			for try := 0; b.err != nil && try < 2 && strings.Contains(tailFile(b.log, 20), "failed to push"); try++ {
				b.err = runBuild(ctx, b.argv, b.log)
			}
			b.dur = time.Since(t0)
		}(b)
	}
	wg.Wait()
	buildTime := time.Since(start)

	for _, b := range builds {
		t.Run(b.variant+"/"+b.spec.Image.Name, func(t *testing.T) {
			if b.err != nil {
				t.Fatalf("docker %s\nfailed: %v\n%s", strings.Join(b.argv[1:], " "), b.err, tailFile(b.log, 60))
			}
			// BuildKit runs its checks during the build too; with the
			// WITH_NCCL-without-OFI variant this covers one more than
			// TestRealRecipesPassCheck.
			if log := tailFile(b.log, 40); strings.Contains(log, "warning found") || strings.Contains(log, "warnings found") {
				t.Errorf("the build reported BuildKit check warnings:\n%s", log)
			}
			for platform, img := range platformImages(t, b.spec.Tags.Hashed) {
				checkInstallPlan(t, b.spec, b.settings, platform, img)
			}
		})
	}
	t.Logf("%d builds in %s, checked in %s", len(builds), buildTime.Round(time.Second), (time.Since(start) - buildTime).Round(time.Second))
}

func buildArg(sp plan.Spec, name string) string {
	for _, a := range sp.BuildArgs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

func runBuild(ctx context.Context, argv []string, logPath string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, stk.Tools().Docker, argv[1:]...)
	cmd.Env = append(os.Environ(), stk.Env()...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd.Run()
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
