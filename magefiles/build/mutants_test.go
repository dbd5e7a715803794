package build

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/schedule"
)

// With parallel builds every output line names its image; one build at a
// time prints buildx's lines as they are.
func TestParallelBuildOutputIsPrefixedWithTheImage(t *testing.T) {
	sp := plan.Spec{Image: catalog.Image{Name: "pt-cpu"}, Platforms: []string{"linux/amd64"},
		Argv: []string{"sh", "-c", "echo '#1 building'; printf 'partial'; echo ' line'; echo 'warning' >&2; printf 'no newline'"}}
	for _, tc := range []struct {
		jobs          int
		wantOut, want string
	}{
		{2, "[pt-cpu] #1 building\n[pt-cpu] partial line\n[pt-cpu] no newline\n", "[pt-cpu] warning\n"},
		{1, "#1 building\npartial line\nno newline", "warning\n"},
	} {
		var out, errb bytes.Buffer
		e := &Env{Runner: &run.Runner{Out: &out, Err: &errb}, Status: run.NewStatus(&bytes.Buffer{})}
		e.Settings.Jobs = tc.jobs
		if err := e.RunSpec(context.Background(), sp); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.wantOut || errb.String() != tc.want {
			t.Errorf("JOBS=%d: out %q err %q, want %q %q", tc.jobs, out.String(), errb.String(), tc.wantOut, tc.want)
		}
	}
}

func TestAFailedBuildNamesItsImage(t *testing.T) {
	e := &Env{Runner: &run.Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, Status: run.NewStatus(&bytes.Buffer{})}
	e.Settings.Jobs = 1
	err := e.RunSpec(context.Background(), plan.Spec{Image: catalog.Image{Name: "tf2-gpu"}, Argv: []string{"sh", "-c", "exit 7"}})
	var ee *run.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 || !strings.HasPrefix(err.Error(), "building tf2-gpu: ") {
		t.Errorf("error %v, want one naming tf2-gpu with exit code 7", err)
	}
}

func TestSummaryTable(t *testing.T) {
	var out bytes.Buffer
	(&Env{}).Summary(&out, []schedule.Result{
		{Name: "cpu-py-38-base", State: schedule.Done, Duration: 61*time.Second + 449*time.Millisecond},
		{Name: "pt-cpu", State: schedule.Skipped},
	}, map[string]string{"cpu-py-38-base": "sha256:abc"})
	want := "IMAGE           RESULT   DIGEST      TIME\n" +
		"cpu-py-38-base  done     sha256:abc  1m1.4s\n" +
		"pt-cpu          skipped  -           0s\n"
	if out.String() != want {
		t.Errorf("summary\n%s\nwant\n%s", out.String(), want)
	}
}

// A dirty worktree's error names up to maxListed files and counts the rest.
func TestADirtyWorktreeNamesItsFirstFilesAndCountsTheRest(t *testing.T) {
	for _, tc := range []struct {
		files int
		more  string
	}{{maxListed, ""}, {maxListed + 3, " and 3 more"}} {
		root := gitCheckout(t)
		for i := 0; i < tc.files; i++ {
			if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%02d.txt", i)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		e, _ := testEnv(t, root, nil)
		err := e.CheckClean(context.Background())
		if err == nil {
			t.Fatalf("%d changed files: no error", tc.files)
		}
		msg := err.Error()
		named := strings.Count(msg, ".txt")
		if named != min(tc.files, maxListed) || !strings.Contains(msg, fmt.Sprintf("f%02d.txt%s)", min(tc.files, maxListed)-1, tc.more)) {
			t.Errorf("%d changed files: %d named in %q, want %d then %q", tc.files, named, msg, min(tc.files, maxListed), tc.more)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestPrefixWriterPassesOnWriteErrors(t *testing.T) {
	p := NewPrefixWriter(failingWriter{}, "[x] ")
	if n, err := p.Write([]byte("a line\n")); err == nil || n != 0 {
		t.Errorf("Write to a failing writer = %d, %v; want 0 and the error", n, err)
	}
	var out bytes.Buffer
	p = NewPrefixWriter(&out, "[x] ")
	if n, err := p.Write([]byte("one\ntw")); err != nil || n != 6 {
		t.Errorf("Write = %d, %v", n, err)
	}
	p.Flush()
	p.Flush() // nothing pending: nothing written
	if out.String() != "[x] one\n[x] tw\n" {
		t.Errorf("wrote %q", out.String())
	}
}

func TestRecipesDirMustHoldADockerfile(t *testing.T) {
	empty := t.TempDir()
	if err := checkRecipesDir(empty); err == nil || err.Error() != "no Dockerfile.* in recipes directory "+empty+" (RECIPES_DIR)" {
		t.Errorf("an empty RECIPES_DIR: %v", err)
	}
	if err := checkRecipesDir(repoRoot); err != nil {
		t.Errorf("the repository's recipes: %v", err)
	}
	if err := checkRecipesDir(filepath.Join(empty, "[")); err == nil {
		t.Error("a RECIPES_DIR that is not a valid pattern was accepted")
	}
}

// An answer is remembered only when it is one: asking again about a stage
// whose COPY source is missing fails again, never with an empty digest.
func TestAFailedStageIsNotRemembered(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "Dockerfile"), []byte("FROM scratch AS a\nCOPY missing.txt /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewSources(root)
	for i := 1; i <= 2; i++ {
		ss, err := s.Stage("Dockerfile", ".", "a", nil)
		if err == nil || !strings.Contains(err.Error(), "missing.txt does not exist") {
			t.Errorf("ask %d: %+v, %v; want the missing COPY source", i, ss, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "missing.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ss, err := s.Stage("Dockerfile", ".", "a", nil); err != nil || !strings.HasPrefix(ss.Digest, "sha256:") {
		t.Errorf("once the file exists: %+v, %v", ss, err)
	}
}

// A RUN step that names none of its bind mount's files reads the whole
// mount: editing any file of it changes the stage's inputs. A mount of a
// directory that does not exist is an error, every time it is asked for.
func TestAMountNamingNoFileReadsItAll(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM scratch AS a\nRUN --mount=type=bind,source=tools,target=/t true\n"+
		"FROM scratch AS b\nRUN --mount=type=bind,source=absent,target=/t true\n"+
		"FROM scratch AS c\nRUN --mount=type=bind,source=absent,target=/t echo\n")
	write("tools/helper.txt", "one\n")
	digest := func() string {
		t.Helper()
		ss, err := NewSources(root).Stage("Dockerfile", ".", "a", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ss.Digest
	}
	before := digest()
	write("tools/helper.txt", "two\n")
	if digest() == before {
		t.Error("editing a file of a mount the RUN line names nothing of left the inputs unchanged")
	}
	s := NewSources(root)
	for _, target := range []string{"b", "c"} {
		if _, err := s.Stage("Dockerfile", ".", target, nil); err == nil || !strings.Contains(err.Error(), "absent does not exist") {
			t.Errorf("stage %s mounting a missing directory: %v", target, err)
		}
	}
}
