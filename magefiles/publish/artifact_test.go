package publish

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/determined-ai/environments/magefiles/plan"
)

func TestArtifactNameKeyContent(t *testing.T) {
	tags := plan.Tags{
		Hashed:    "determinedai/environments:py-3.8-pytorch-1.12-tf-2.11-cpu-abc1234",
		Versioned: "determinedai/environments:py-3.8-pytorch-1.12-tf-2.11-cpu-0.26.4",
	}
	if got := ArtifactName("tf2-cpu", "0"); got != "publish-tf2-cpu-0" {
		t.Error(got)
	}
	if got := ArtifactKey("gpt-neox-deepspeed-gpu", "1"); got != "gpt_neox_deepspeed_gpu_1" {
		t.Error(got)
	}
	if got := ArtifactKey("pytorch10-tf27-rocm50", "0"); got != "pytorch10_tf27_rocm50_0" {
		t.Error(got)
	}
	want := "tf2_cpu_0_hashed: determinedai/environments:py-3.8-pytorch-1.12-tf-2.11-cpu-abc1234\n" +
		"tf2_cpu_0_versioned: determinedai/environments:py-3.8-pytorch-1.12-tf-2.11-cpu-0.26.4\n"
	if got := ArtifactContent("tf2-cpu", "0", tags); got != want {
		t.Errorf("%q", got)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := writeAtomic(dir, "f", []byte("a\n")); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(dir, "f", []byte("b\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "f"))
	if string(b) != "b\n" {
		t.Errorf("%q", b)
	}
	if got := readDir(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Errorf("leftovers %v", got)
	}
	if err := writeAtomic(filepath.Join(dir, "missing"), "f", nil); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestRepoOf(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000/determinedai/environments:tag-abc": "127.0.0.1:5000/determinedai/environments",
		"determinedai/environments:x":                      "determinedai/environments",
		"127.0.0.1:5000/a/b":                               "127.0.0.1:5000/a/b",
	} {
		if got := repoOf(in); got != want {
			t.Errorf("repoOf(%s) = %s", in, got)
		}
	}
}

func TestReadDigest(t *testing.T) {
	dir := t.TempDir()
	good := "sha256:" + string(slices.Repeat([]byte("a"), 64))
	p := filepath.Join(dir, "m.json")
	os.WriteFile(p, []byte(`{"containerimage.digest":"`+good+`","image.name":"x"}`), 0o644)
	if d, err := readDigest(p); err != nil || d != good {
		t.Errorf("%s %v", d, err)
	}
	os.WriteFile(p, []byte(`{"image.name":"x"}`), 0o644)
	if _, err := readDigest(p); err == nil {
		t.Error("no digest accepted")
	}
	if _, err := readDigest(filepath.Join(dir, "none")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestSamePlatforms(t *testing.T) {
	if !samePlatforms([]string{"linux/arm64", "linux/amd64"}, []string{"linux/amd64", "linux/arm64"}) {
		t.Error("order matters")
	}
	if samePlatforms([]string{"linux/amd64"}, []string{"linux/amd64", "linux/arm64"}) {
		t.Error("subset equal")
	}
}
