package targets

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The compiled `DRY_RUN=1 publish`, run where an earlier publish left its
// artifact files and report, says what it would remove and leaves every
// file exactly as it was (content and modification time): a dry run writes
// and removes nothing.
func TestCompiledDryRunPublishLeavesTheFilesInPlace(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tool := compiledTool(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(recordingDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	artifacts := filepath.Join(tmp, "artifacts")
	report := filepath.Join(tmp, "publish-report.json")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	files := map[string]string{
		filepath.Join(artifacts, "publish-tf2-cpu-0"):          "tf2_cpu_0_hashed: old\ntf2_cpu_0_versioned: old\n",
		filepath.Join(artifacts, "publish-pt-gpu-0"):           "pt_gpu_0_hashed: old\npt_gpu_0_versioned: old\n",
		filepath.Join(artifacts, "publish-report.json"):        `{"ok":true}`, // where an older version wrote its report
		filepath.Join(artifacts, "notes.txt"):                  "not ours",
		report:                                                 `{"ok":true}`,
		filepath.Join(artifacts, "publish-tf2-cpu-1"):          "tf2_cpu_1_hashed: old\ntf2_cpu_1_versioned: old\n", // another variant's
		filepath.Join(artifacts, ".publish-tf2-cpu-0.tmp-123"): "partial",
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(t.TempDir(), "docker.log")
	cmd := exec.Command(tool, "publish")
	cmd.Dir = gitRepo(t, "0.26.4\n")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1",
		"FAKE_DOCKER_LOG="+log, "DRY_RUN=1", "ARTIFACTS_DIR="+artifacts, "PUBLISH_REPORT="+report)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("DRY_RUN=1 publish: %v\n%s", err, out)
	}
	for _, want := range []string{
		"# remove stale " + filepath.Join(artifacts, "publish-tf2-cpu-0") + "\n",
		"# remove stale " + report + "\n",
		"# write artifact " + filepath.Join(artifacts, "publish-tf2-cpu-0") + "\n",
		"# write report " + report + "\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the dry run does not say %q", strings.TrimSpace(want))
		}
	}
	for p, content := range files {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("the dry run removed %s: %v", p, err)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != content || !fi.ModTime().Equal(old) {
			t.Errorf("the dry run changed %s: %q (modified %s)", p, b, fi.ModTime())
		}
	}
	ents, err := os.ReadDir(artifacts)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 6 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("ARTIFACTS_DIR holds %v after the dry run, want the 6 files put there", names)
	}
	if b, _ := os.ReadFile(log); strings.Contains(string(b), "buildx build") {
		t.Errorf("the dry run ran a build:\n%s", b)
	}
}
