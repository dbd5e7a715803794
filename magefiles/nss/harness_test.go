package nss

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// setupFailed is the exit status of the namespace script when preparing the
// namespace (not the command under test) failed.
const setupFailed = 111

// nsScript runs inside `unshare --mount --propagation private`: every mount
// it makes is private to that namespace and vanishes with it. mount -n keeps
// libmount from writing /run/mount/utab on the host.
const nsScript = `set -u
fail() { echo "namespace setup: $*" >&2; exit ` + "111" + `; }
mount -n -t tmpfs nss-determined-test /run || fail "mount tmpfs on /run"
mkdir -p /run/determined/etc || fail "mkdir /run/determined/etc"
for db in passwd group shadow; do
  if [ -e "$NSSDET_FIXTURES/$db" ]; then
    cp "$NSSDET_FIXTURES/$db" "/run/determined/etc/$db" || fail "copy $db"
  fi
done
mount -n --bind "$NSSDET_FIXTURES/nsswitch.conf" /etc/nsswitch.conf || fail "bind nsswitch.conf"
export LD_LIBRARY_PATH="$NSSDET_LIB"
exec "$@"
`

// nsswitchDetermined lists the module after files for the three databases.
const nsswitchDetermined = "passwd: files determined\ngroup: files determined\nshadow: files determined\n"

// nsswitchFilesOnly is the baseline: the host's files alone.
const nsswitchFilesOnly = "passwd: files\ngroup: files\nshadow: files\n"

// fixture describes what the namespace sees. A nil database file is absent.
type fixture struct {
	passwd, group, shadow *string
	nsswitch              string   // defaults to nsswitchDetermined
	env                   []string // added to the command's environment
}

func str(s string) *string { return &s }

// result is the outcome of one command run in the namespace.
type result struct {
	stdout string
	stderr string
	exit   int
}

// lines splits stdout into lines (no trailing empty line).
func (r result) lines() []string {
	s := strings.TrimSuffix(r.stdout, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// TestMain removes the shared build directory after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// requireRoot fails (never skips) when the tests cannot create a mount
// namespace.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the NSS module tests need root to mount inside a private mount namespace (unshare --mount); run them as root, e.g. `sudo go test ./magefiles/nss/`")
	}
	for _, tool := range []string{"unshare", "mount", "getent", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: apt-get install util-linux libc-bin gcc", tool)
		}
	}
}

// repoRoot is the repository root (two levels above this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "dockerfile_scripts", "libnss_determined")); err != nil {
		t.Fatalf("cannot find the module sources from %s: %v", root, err)
	}
	return root
}

// buildModule builds libnss_determined.so.2 once per test binary with the
// Dockerfiles' exact command and returns the directory holding it.
func buildModule(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Fatalf("cc is not installed: apt-get install gcc")
	}
	root := repoRoot(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "nss-determined-build-")
		if buildErr != nil {
			return
		}
		// The command writes ./libnss_determined.so.2; redirect only the
		// output path, keeping every flag and the source glob as they are.
		cmdline := strings.Replace(BuildCommand, "-o libnss_determined.so.2", `-o "$1/libnss_determined.so.2"`, 1)
		cmd := exec.Command("sh", "-c", cmdline, "sh", buildDir)
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building the module (%s) failed: %v\n%s", BuildCommand, buildErr, buildOut)
	}
	if len(bytes.TrimSpace(buildOut)) != 0 {
		t.Fatalf("building the module printed diagnostics:\n%s", buildOut)
	}
	return buildDir
}

// run executes argv inside a fresh private mount namespace prepared from fx.
func run(t *testing.T, fx fixture, argv ...string) result {
	t.Helper()
	requireRoot(t)
	lib := buildModule(t)

	dir := t.TempDir()
	write := func(name string, content *string, mode os.FileMode) {
		if content == nil {
			return
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(*content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", fx.passwd, 0o644)
	write("group", fx.group, 0o644)
	write("shadow", fx.shadow, 0o600)
	ns := fx.nsswitch
	if ns == "" {
		ns = nsswitchDetermined
	}
	write("nsswitch.conf", &ns, 0o644)

	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", nsScript, "sh"}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(append(os.Environ(), "NSSDET_FIXTURES="+dir, "NSSDET_LIB="+lib, "LC_ALL=C"), fx.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		res.exit = exitErr.ExitCode()
	default:
		t.Fatalf("running %q in a mount namespace: %v\nstderr: %s", argv, err, res.stderr)
	}
	if res.exit == setupFailed || strings.Contains(res.stderr, "namespace setup:") {
		t.Fatalf("preparing the mount namespace failed (exit %d): %s", res.exit, res.stderr)
	}
	if res.exit > 128 || strings.Contains(res.stderr, "Segmentation fault") {
		t.Fatalf("%q crashed (exit %d): %s", argv, res.exit, res.stderr)
	}
	return res
}

// getent runs getent with args and asserts its exit status and exact output.
func getent(t *testing.T, fx fixture, wantExit int, want []string, args ...string) {
	t.Helper()
	res := run(t, fx, append([]string{"getent"}, args...)...)
	if res.exit != wantExit {
		t.Errorf("getent %s: exit %d, want %d (stdout %q, stderr %q)", strings.Join(args, " "), res.exit, wantExit, res.stdout, res.stderr)
	}
	assertLines(t, "getent "+strings.Join(args, " "), res.lines(), want)
}

func assertLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d lines, want %d\ngot:\n%s\nwant:\n%s", what, len(got), len(want), clip(got), clip(want))
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: line %d\ngot:  %s\nwant: %s", what, i+1, clipLine(got[i]), clipLine(want[i]))
		}
	}
}

func clipLine(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func clip(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(clipLine(l))
		b.WriteByte('\n')
	}
	return b.String()
}

// baseline is what getent prints for args with only the host's files.
func baseline(t *testing.T, args ...string) []string {
	t.Helper()
	res := run(t, fixture{nsswitch: nsswitchFilesOnly}, append([]string{"getent"}, args...)...)
	if res.exit != 0 {
		t.Fatalf("baseline getent %s: exit %d: %s", strings.Join(args, " "), res.exit, res.stderr)
	}
	return res.lines()
}
