package mutants

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/determined-ai/environments/magefiles/run"
)

// ToolModule is the module path of gremlins, pinned in tools/mutants/go.mod.
const ToolModule = "github.com/go-gremlins/gremlins"

// ToolVersion reads the version of gremlins required in dir/go.mod (the
// tools/mutants module).
func ToolVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("the pinned mutation tester: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "require "))
		if len(f) >= 2 && f[0] == ToolModule {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", filepath.Join(dir, "go.mod"), ToolModule)
}

// BuildArgv is the command that builds gremlins into out, run in the tools
// module's directory.
func BuildArgv(out string) []string {
	return []string{"go", "build", "-trimpath", "-o", out, ToolModule + "/cmd/gremlins"}
}

// BuildTool builds the gremlins pinned in toolsDir/go.mod into
// cacheDir/gremlins-<version>/gremlins unless it is there already, and
// returns its path.
func BuildTool(ctx context.Context, r *run.Runner, toolsDir, cacheDir string) (string, error) {
	version, err := ToolVersion(toolsDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, "gremlins-"+version)
	bin := filepath.Join(dir, "gremlins")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("building gremlins %s: %w", version, err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	b := &run.Runner{Out: r.Out, Err: r.Err, Verbose: r.Verbose, Grace: r.Grace, Dir: toolsDir,
		Env: append(append([]string(nil), r.Env...), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")}
	if err := b.Run(ctx, BuildArgv(tmp)); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("building gremlins %s in %s: %w", version, toolsDir, err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("building gremlins %s: %w", version, err)
	}
	return bin, nil
}
