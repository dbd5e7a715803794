package targets

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	toolOnce sync.Once
	toolPath string
	toolErr  error
)

// compiledTool compiles the mage targets once per test binary.
func compiledTool(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		root, _ := filepath.Abs(filepath.Join("..", ".."))
		dir, err := os.MkdirTemp("", "envs-tool-")
		if err != nil {
			toolErr = err
			return
		}
		toolPath = filepath.Join(dir, "envs")
		compile := exec.Command("go", "run", "magefile.go", "-compile", toolPath)
		compile.Dir = root
		if out, err := compile.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("compiling the tool: %v\n%s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolPath
}

// gitRepo makes a repository with VERSION committed.
func gitRepo(t *testing.T, version string) string {
	t.Helper()
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "VERSION"), []byte(version), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "VERSION"}, {"-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git: %v %s", err, out)
		}
	}
	return repo
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// `mage -t` exits at its deadline without waiting for the target; the
// targets stop earlier so that no build process outlives the tool.
func TestMageTimeoutLeavesNoBuildProcessBehind(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tmp := t.TempDir()
	tool := compiledTool(t)
	// A docker that answers the preflight and, for a build, starts a
	// grandchild (as docker starts its buildx plugin) and waits for it.
	bin := filepath.Join(tmp, "bin")
	pidfile := filepath.Join(tmp, "grandchild.pid")
	script := `#!/bin/sh
case "$1 $2" in
  "--version "*) echo "Docker version 28.2.2"; exit 0;;
  "buildx version") echo "github.com/docker/buildx v0.38.2 x"; exit 0;;
  "buildx inspect") echo "Platforms: linux/amd64, linux/arm64"; exit 0;;
  "version --format") echo "linux/amd64"; exit 0;;
esac
trap '' INT
sleep 300 &
echo $! > ` + pidfile + `
wait
`
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	repo := gitRepo(t, "0.26.4\n")
	cmd := exec.Command(tool, "-t", "12s", "build", "cpu-py-37-base")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("the tool succeeded although its build was stopped:\n%s", out)
	}
	if elapsed > 20*time.Second {
		t.Errorf("the tool took %s to stop with -t 12s", elapsed)
	}
	b, rerr := os.ReadFile(pidfile)
	if rerr != nil {
		t.Fatalf("the build never started: %v\n%s", rerr, out)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for deadline := time.Now().Add(2 * time.Second); alive(pid) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("a build process (pid %d) outlived the tool after -t:\n%s", pid, out)
	}
}
