package recipes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// buildSlot runs dockerfile_scripts/build_slot.sh with args and env (PATH
// added) and returns its stdout, stderr and error.
func buildSlot(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{filepath.Join(repo, "dockerfile_scripts", "build_slot.sh")}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestBuildSlotCount: memory / (CPUs x 2 GiB), at least 1, the cgroup limit
// when lower than MemTotal, BUILD_SLOTS when set (and refused when not a
// whole number >= 1).
func TestBuildSlotCount(t *testing.T) {
	const gibKB = 1 << 20
	for _, c := range []struct {
		name   string
		memKB  int
		cpus   int
		cgroup string // memory.max ("" = no file)
		slots  string // BUILD_SLOTS
		want   string
	}{
		{"this project's test machines", 24 * gibKB, 2, "", "", "6"},
		{"CircleCI large", 15 * gibKB, 4, "", "", "1"},
		{"CircleCI xlarge", 32 * gibKB, 8, "", "", "2"},
		{"a big build machine", 256 * gibKB, 16, "", "", "8"},
		{"less than one slot's worth", 3 * gibKB, 2, "", "", "1"},
		{"cgroup limit lower", 64 * gibKB, 2, fmt.Sprint(8 << 30), "", "2"},
		{"cgroup without a limit", 64 * gibKB, 2, "max", "", "16"},
		{"cgroup limit higher", 16 * gibKB, 2, fmt.Sprint(64 << 30), "", "4"},
		{"BUILD_SLOTS", 24 * gibKB, 2, "", "3", "3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			meminfo := filepath.Join(dir, "meminfo")
			if err := os.WriteFile(meminfo, []byte(fmt.Sprintf("MemFree: 100 kB\nMemTotal:  %d kB\nSwapTotal: 0 kB\n", c.memKB)), 0o644); err != nil {
				t.Fatal(err)
			}
			if c.cgroup != "" {
				if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(c.cgroup+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// GNU nproc reports OMP_NUM_THREADS when set.
			env := []string{"PROC_MEMINFO=" + meminfo, "CGROUP_ROOT=" + dir, fmt.Sprintf("OMP_NUM_THREADS=%d", c.cpus)}
			if c.slots != "" {
				env = append(env, "BUILD_SLOTS="+c.slots)
			}
			out, errs, err := buildSlot(t, env, "--count")
			if err != nil || strings.TrimSpace(out) != c.want {
				t.Errorf("--count = %q, %v (%s); want %s", out, err, errs, c.want)
			}
		})
	}
	for _, bad := range []string{"0", "-1", "two", "1.5"} {
		_, errs, err := buildSlot(t, []string{"BUILD_SLOTS=" + bad}, "true")
		if err == nil || !strings.Contains(errs, "BUILD_SLOTS="+bad+" is not a whole number >= 1") {
			t.Errorf("BUILD_SLOTS=%s: err %v, stderr %q; want a refusal naming the value", bad, err, errs)
		}
	}
}

// TestBuildSlotBoundsConcurrentCommands runs six commands through
// build_slot.sh at once with two slots in one slot directory: at most two
// run at the same time, every one runs, and their exit status is passed on.
func TestBuildSlotBoundsConcurrentCommands(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Fatal("flock (util-linux) is not installed")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	var wg sync.WaitGroup
	errs := make([]string, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script := fmt.Sprintf("echo start >> %s; sleep 0.3; echo end >> %s; exit %d", log, log, i%2*7)
			_, stderr, err := buildSlot(t, []string{"SLOT_DIR=" + dir, "BUILD_SLOTS=2"}, "bash", "-c", script)
			switch {
			case i%2 == 1 && (err == nil || err.(*exec.ExitError).ExitCode() != 7):
				errs[i] = fmt.Sprintf("command %d: err %v, want exit status 7 passed on (%s)", i, err, stderr)
			case i%2 == 0 && err != nil:
				errs[i] = fmt.Sprintf("command %d: %v (%s)", i, err, stderr)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	inside, most, starts := 0, 0, 0
	for _, line := range strings.Fields(string(b)) {
		if line == "start" {
			inside++
			starts++
		} else {
			inside--
		}
		most = max(most, inside)
	}
	if starts != 6 || most != 2 {
		t.Errorf("%d commands started, at most %d at once; want 6 and 2:\n%s", starts, most, b)
	}
	// A slot held by a command that called build_slot.sh again is not waited for twice.
	out, stderr, err := buildSlot(t, []string{"SLOT_DIR=" + dir, "BUILD_SLOTS=1"}, "bash", "-c", `bash "$0" echo nested:$BUILD_SLOT_HELD`, mustAbs(t, "../../dockerfile_scripts/build_slot.sh"))
	if err != nil || !regexp.MustCompile(`^nested:1\n$`).MatchString(out) {
		t.Errorf("nested build_slot.sh with one slot: %q, %v (%s)", out, err, stderr)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
