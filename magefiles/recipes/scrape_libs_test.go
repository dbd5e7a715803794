package recipes

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// runScrapeLibs runs dockerfile_scripts/scrape_libs.sh (the CUDA images'
// entrypoint) with its paths under root, with env, and returns the
// environment the command it execs sees.
func runScrapeLibs(t *testing.T, root string, env ...string) map[string]string {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(repo, "dockerfile_scripts", "scrape_libs.sh"), "env")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SCRAPE_LIBS_ROOT=" + root}, env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scrape_libs.sh env: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	return got
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScrapeLibsWithoutThePluginChangesNothing(t *testing.T) {
	root := t.TempDir()
	touch(t, filepath.Join(root, "host", "opt", "cray", "lib64", "libfabric.so.1"))
	got := runScrapeLibs(t, root, "LD_LIBRARY_PATH=/usr/local/nvidia/lib")
	if got["LD_LIBRARY_PATH"] != "/usr/local/nvidia/lib" {
		t.Errorf("LD_LIBRARY_PATH=%q without /container/aws/lib, want it unchanged", got["LD_LIBRARY_PATH"])
	}
	for _, k := range []string{"CUDA_CACHE_PATH", "TF_FORCE_GPU_ALLOW_GROWTH", "FI_CXI_DISABLE_HOST_REGISTER", "LD_PRELOAD"} {
		if v, ok := got[k]; ok {
			t.Errorf("%s=%q is set without the AWS plugin", k, v)
		}
	}
}

func TestScrapeLibsPrefersTheHostLibfabric(t *testing.T) {
	root := t.TempDir()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "container", "aws", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var", "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A vendor libfabric: the development link, the SONAME link the
	// programs load, the library itself; and beside it a library that is
	// not libfabric. A libfabric.so.1 alone elsewhere (no libfabric.so) is
	// not the one.
	hostDir := filepath.Join(root, "host", "opt", "cray", "lib64")
	for _, f := range []string{"libfabric.so", "libfabric.so.1", "libfabric.so.1.18.2", "libcxi.so.1"} {
		touch(t, filepath.Join(hostDir, f))
	}
	touch(t, filepath.Join(root, "host", "aaa", "libfabric.so.1"))
	hostLib := filepath.Join(hostDir, "libfabric.so")
	ffi := filepath.Join(root, "usr", "lib", "x86_64-linux-gnu", "libffi.so.7")
	touch(t, ffi)

	got := runScrapeLibs(t, root, "LD_LIBRARY_PATH=/usr/local/nvidia/lib")
	links := filepath.Join(root, "var", "tmp", u.Username, "detAI", "lib")
	want := strings.Join([]string{
		filepath.Join(root, "container", "aws", "lib"), links, "/usr/local/nvidia/lib",
		filepath.Dir(hostLib), filepath.Join(root, "host", "usr", "lib64"), filepath.Join(root, "host", "usr", "local", "lib64"),
	}, ":")
	if got["LD_LIBRARY_PATH"] != want {
		t.Errorf("LD_LIBRARY_PATH=%q\nwant         %q", got["LD_LIBRARY_PATH"], want)
	}
	for _, f := range []string{"libfabric.so", "libfabric.so.1", "libfabric.so.1.18.2"} {
		if dst, err := os.Readlink(filepath.Join(links, f)); err != nil || dst != filepath.Join(hostDir, f) {
			t.Errorf("the host's %s is not linked into %s: %q, %v", f, links, dst, err)
		}
	}
	if entries, err := os.ReadDir(links); err != nil || len(entries) != 3 {
		t.Errorf("%s holds %d entries (%v), want the three libfabric files only", links, len(entries), err)
	}
	if p := got["CUDA_CACHE_PATH"]; !strings.HasPrefix(p, filepath.Join(root, "var", "tmp", u.Username+"-nvcache-")) {
		t.Errorf("CUDA_CACHE_PATH=%q, want a new %s-nvcache-* directory in /var/tmp", p, u.Username)
	} else if st, err := os.Stat(p); err != nil || !st.IsDir() {
		t.Errorf("CUDA_CACHE_PATH %s is not a directory: %v", p, err)
	}
	for k, v := range map[string]string{"TF_FORCE_GPU_ALLOW_GROWTH": "true", "FI_CXI_DISABLE_HOST_REGISTER": "1", "LD_PRELOAD": ffi} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}

	// Values the user set are kept.
	got = runScrapeLibs(t, root, "CUDA_CACHE_PATH=/scratch/nv", "TF_FORCE_GPU_ALLOW_GROWTH=false", "LD_PRELOAD=/x.so")
	// libffi goes in front of the user's preloads, as before.
	for k, v := range map[string]string{"CUDA_CACHE_PATH": "/scratch/nv", "TF_FORCE_GPU_ALLOW_GROWTH": "false", "LD_PRELOAD": ffi + ":/x.so"} {
		if got[k] != v {
			t.Errorf("with the user's value: %s=%q, want %q", k, got[k], v)
		}
	}
}

func TestScrapeLibsExecsTheCommand(t *testing.T) {
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	cmd := exec.Command("bash", filepath.Join(repo, "dockerfile_scripts", "scrape_libs.sh"), "sh", "-c", "exit 3")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SCRAPE_LIBS_ROOT=" + t.TempDir()}
	var ee *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("scrape_libs.sh sh -c 'exit 3': %v, want exit status 3 (the command's)", err)
	}
}
