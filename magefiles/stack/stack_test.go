//go:build e2e

package stack

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testLog writes progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

const smokeDockerfile = `FROM ubuntu:20.04
RUN uname -m > /arch
ARG X
RUN echo "$X" > /x
`

const bashDockerfile = `FROM nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04
SHELL ["/bin/bash", "-c"]
RUN if [[ -x /bin/sh ]]; then echo ok > /ok; fi
`

func TestStackBuildsMultiPlatformAndPushes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	o := Options{WorkDir: t.TempDir(), Log: testLog{t}}

	start := time.Now()
	tools, err := Provision(ctx, o)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Logf("Provision took %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	s, err := Start(ctx, tools, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if err := s.Stop(); err != nil { // idempotent
			t.Errorf("second Stop: %v", err)
		}
	})
	t.Logf("Start took %s", time.Since(start).Round(time.Millisecond))

	if err := s.SeedBaseImages(ctx, nil); err != nil {
		t.Fatalf("SeedBaseImages: %v", err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(smokeDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(dir, "metadata.json")
	tag := s.Hub + "/determinedai/environments:smoke"
	start = time.Now()
	if out, err := s.Docker(ctx, dir, "buildx", "build", "--builder", s.Builder,
		"--platform", "linux/amd64,linux/arm64", "--build-arg", "X=hello",
		"--push", "-t", tag, "--metadata-file", meta, "."); err != nil {
		t.Fatalf("build --push: %v", err)
	} else {
		t.Logf("build --push took %s\n%s", time.Since(start).Round(time.Millisecond), tail(string(out), 3000))
	}

	var md struct {
		Digest string `json:"containerimage.digest"`
	}
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &md); err != nil || md.Digest == "" {
		t.Fatalf("metadata file %s has no containerimage.digest (%v): %s", meta, err, b)
	}

	ref, err := name.ParseReference(tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("read index %s: %v", ref, err)
	}
	if d, _ := idx.Digest(); d.String() != md.Digest {
		t.Errorf("pushed index digest %s, metadata says %s", d, md.Digest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string]v1.Hash{}
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" {
			imgs[m.Platform.Architecture] = m.Digest
		}
	}
	if _, ok := imgs["amd64"]; !ok {
		t.Errorf("index has no linux/amd64 image: %+v", im.Manifests)
	}
	for arch, want := range map[string]string{"amd64": "x86_64", "arm64": "aarch64"} {
		d, ok := imgs[arch]
		if !ok {
			t.Errorf("index has no linux/%s image: %+v", arch, im.Manifests)
			continue
		}
		img, err := idx.Image(d)
		if err != nil {
			t.Fatalf("%s image: %v", arch, err)
		}
		files, err := ImageFiles(img, "/arch", "/x")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(files["/arch"]); got != want {
			t.Errorf("%s image /arch = %q, want %q", arch, got, want)
		}
		if got := strings.TrimSpace(files["/x"]); got != "hello" {
			t.Errorf("%s image /x = %q, want hello", arch, got)
		}
	}

	// The stand-in's /bin/bash (busybox sh) runs on both platforms.
	bashDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(bashDir, "Dockerfile"), []byte(bashDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(t.TempDir(), "out")
	if _, err := s.Docker(ctx, bashDir, "buildx", "build", "--builder", s.Builder,
		"--platform", "linux/amd64,linux/arm64", "-o", "type=local,dest="+outDir, "."); err != nil {
		t.Fatalf("build with SHELL bash: %v", err)
	}
	for _, p := range []string{"linux_amd64", "linux_arm64"} {
		b, err := os.ReadFile(filepath.Join(outDir, p, "ok"))
		if err != nil || strings.TrimSpace(string(b)) != "ok" {
			t.Errorf("%s/ok = %q, %v; want ok", p, b, err)
		}
	}

	// A local-only build must not touch any registry.
	before := registryState(ctx, t, s)
	start = time.Now()
	if _, err := s.Docker(ctx, dir, "buildx", "build", "--builder", s.Builder,
		"--platform", "linux/arm64", "--build-arg", "X=local",
		"-o", "type=image,push=false", "-t", tag, "."); err != nil {
		t.Fatalf("build push=false: %v", err)
	}
	t.Logf("build push=false took %s", time.Since(start).Round(time.Millisecond))
	if after := registryState(ctx, t, s); after != before {
		t.Errorf("push=false build changed the registries:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// registryState lists every repository, tag and manifest digest of the
// stack's registries.
func registryState(ctx context.Context, t *testing.T, s *Stack) string {
	t.Helper()
	state, err := RegistryState(ctx, s.Hub, s.NGC, s.Mirror)
	if err != nil {
		t.Fatal(err)
	}
	return state
}
