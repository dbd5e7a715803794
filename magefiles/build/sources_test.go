package build

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/determined-ai/environments/magefiles/plan"
)

// copyRecipes copies the real recipes (Dockerfiles, dockerfile_scripts) into
// a temporary checkout.
func copyRecipes(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile.cpu", "Dockerfile.gpu"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(dir, "dockerfile_scripts"), os.DirFS(filepath.Join(repoRoot, "dockerfile_scripts"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stageDigests are the sources digests of the base and framework stages of
// Dockerfile.gpu as published (FROM the base image, not the base stage).
func stageDigests(t *testing.T, dir string) (base, framework string, images []string) {
	t.Helper()
	src := NewSources(dir)
	b, err := src.Stage("Dockerfile.gpu", ".", "base", map[string]string{"BASE_IMAGE": "nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := src.Stage("Dockerfile.gpu", ".", "framework", map[string]string{"BASE_IMAGE": "reg/envs:cuda-11.3-base-gpu-abc1234"})
	if err != nil {
		t.Fatal(err)
	}
	return b.Digest, f.Digest, append(b.Images, f.Images...)
}

func edit(t *testing.T, path, add string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, []byte(add)...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAStageReadsOnlyWhatItsLinesName(t *testing.T) {
	dir := copyRecipes(t)
	base, fw, images := stageDigests(t, dir)
	if want := []string{"nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04", "reg/envs:cuda-11.3-base-gpu-abc1234"}; len(images) != 2 || images[0] != want[0] || images[1] != want[1] {
		t.Errorf("images %v, want %v", images, want)
	}
	if base == fw {
		t.Fatal("base and framework read the same")
	}

	// Outside the recipes: nothing changes.
	writeTestFile(t, filepath.Join(dir, "README.md"), "docs\n")
	if b, f, _ := stageDigests(t, dir); b != base || f != fw {
		t.Error("a README edit changed a stage's sources")
	}
	// A script only the framework stage runs.
	edit(t, filepath.Join(dir, "dockerfile_scripts", "install_horovod.sh"), "\n# edited\n")
	b, f, _ := stageDigests(t, dir)
	if b != base {
		t.Error("editing install_horovod.sh changed the base stage's sources")
	}
	if f == fw {
		t.Error("editing install_horovod.sh did not change the framework stage's sources")
	}
	// A library every script sources reaches both.
	edit(t, filepath.Join(dir, "dockerfile_scripts", "lib.sh"), "\n# edited\n")
	b2, f2, _ := stageDigests(t, dir)
	if b2 == b || f2 == f {
		t.Error("editing lib.sh, which the scripts source, did not change both stages")
	}
	// The recipe text of one stage.
	edit(t, filepath.Join(dir, "Dockerfile.gpu"), "\nRUN true\n") // appended to the last stage (rocm)
	if b3, f3, _ := stageDigests(t, dir); b3 != b2 || f3 != f2 {
		t.Error("a line in the rocm stage changed the base or framework stage")
	}
}

func TestACopiedFileIsRead(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "Dockerfile.cpu"), "ARG BASE_IMAGE=ubuntu:20.04\nFROM ${BASE_IMAGE} AS base\nCOPY conf/ /etc/conf/\nFROM scratch AS other\nCOPY other.txt /\n")
	writeTestFile(t, filepath.Join(dir, "conf", "a.conf"), "a\n")
	writeTestFile(t, filepath.Join(dir, "other.txt"), "o\n")
	digest := func() plan.StageSources {
		ss, err := NewSources(dir).Stage("Dockerfile.cpu", ".", "base", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	first := digest()
	if len(first.Images) != 1 || first.Images[0] != "ubuntu:20.04" {
		t.Errorf("images %v", first.Images)
	}
	writeTestFile(t, filepath.Join(dir, "other.txt"), "changed\n")
	if digest().Digest != first.Digest {
		t.Error("a file only another stage copies changed the base stage")
	}
	writeTestFile(t, filepath.Join(dir, "conf", "a.conf"), "changed\n")
	if digest().Digest == first.Digest {
		t.Error("a copied file is not an input")
	}
	writeTestFile(t, filepath.Join(dir, "Dockerfile.cpu"), "FROM ubuntu:20.04 AS base\nCOPY missing /\n")
	if _, err := NewSources(dir).Stage("Dockerfile.cpu", ".", "base", nil); err == nil {
		t.Error("a COPY of a missing file is not an error")
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRememberedAnswersFollowTheArgumentsTheRecipeReads(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "Dockerfile.cpu"), "ARG BASE_IMAGE=ubuntu:20.04\nFROM ${BASE_IMAGE} AS base\nARG CONF\nCOPY ${CONF} /etc/\n")
	writeTestFile(t, filepath.Join(dir, "a.conf"), "a\n")
	writeTestFile(t, filepath.Join(dir, "b.conf"), "b\n")
	src := NewSources(dir)
	ask := func(args map[string]string) plan.StageSources {
		ss, err := src.Stage("Dockerfile.cpu", ".", "base", args)
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	a := ask(map[string]string{"BASE_IMAGE": "ubuntu:20.04", "CONF": "a.conf", "OTHER": "1"})
	if b := ask(map[string]string{"BASE_IMAGE": "ubuntu:20.04", "CONF": "a.conf", "OTHER": "2"}); b.Digest != a.Digest {
		t.Error("an argument no word of the recipe names changed the answer")
	}
	if b := ask(map[string]string{"BASE_IMAGE": "ubuntu:20.04", "CONF": "b.conf"}); b.Digest == a.Digest {
		t.Error("COPY ${CONF} of another file gave the remembered answer")
	}
	if b := ask(map[string]string{"BASE_IMAGE": "ubuntu:22.04", "CONF": "a.conf"}); len(b.Images) != 1 || b.Images[0] != "ubuntu:22.04" {
		t.Errorf("another BASE_IMAGE gave images %v", b.Images)
	}
}
