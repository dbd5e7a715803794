//go:build e2e

package stack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEngineAndMultiNodeBuilder starts a stack with a Docker Engine: a
// remote-builder build loads into it and runs there; a multi-node builder
// builds each platform on its own node; Stop leaves no daemon and no mount.
func TestEngineAndMultiNodeBuilder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	o := Options{WorkDir: t.TempDir(), Log: testLog{t}, Engine: true}
	tools, err := Provision(ctx, o)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	// A bridge left by a stack whose process died (a pid above any
	// pid_max): the next stack with an engine deletes it.
	stale := bridgeName(0x7ffffffe, [2]byte{0xde, 0xad})
	if out, err := exec.Command("ip", "link", "add", "name", stale, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add %s: %v\n%s", stale, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", stale).Run() })
	start := time.Now()
	s, err := Start(ctx, tools, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start with an engine took %s", time.Since(start).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.Stop()
		}
	})
	if out, err := exec.Command("ip", "link", "show", stale).CombinedOutput(); err == nil {
		t.Errorf("the stale bridge %s of a dead process is still there:\n%s", stale, out)
	}
	if !strings.HasPrefix(s.DockerHost, "unix://") || !strings.Contains(strings.Join(s.Env(), " "), "DOCKER_HOST="+s.DockerHost) {
		t.Fatalf("DockerHost %q, Env %v", s.DockerHost, s.Env())
	}
	if err := s.SeedBaseImages(ctx, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(smokeDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ platform, arch string }{{"linux/amd64", "x86_64"}, {"linux/arm64", "aarch64"}} {
		tag := "e2e/engine-smoke:" + strings.ReplaceAll(c.platform, "/", "-")
		if _, err := s.Docker(ctx, dir, "buildx", "build", "--builder", s.Builder, "--platform", c.platform,
			"--build-arg", "X=loaded", "--load", "-t", tag, "."); err != nil {
			t.Fatalf("build --load: %v", err)
		}
		out, err := s.Docker(ctx, "", "run", "--rm", "--network", "none", "--platform", c.platform, tag, "cat", "/arch", "/x")
		if err != nil || strings.Fields(string(out))[0] != c.arch || !strings.Contains(string(out), "loaded") {
			t.Errorf("docker run %s: %v\n%s", tag, err, out)
		}
	}

	// The engine's own builder (the docker driver, Docker Desktop's default)
	// runs RUN steps on the engine's bridge and stores the image in the
	// engine with -o type=image,push=false. (docker run on the bridge warns
	// that IP forwarding is off, before the command's output.)
	if s.EngineBridge == "" {
		t.Fatal("the engine has no bridge: its docker-driver builder cannot run RUN steps (see the stack's log)")
	}
	if _, err := s.Docker(ctx, dir, "buildx", "build", "--builder", "default", "--build-arg", "X=docker-driver",
		"--output", "type=image,push=false", "-t", "e2e/engine-smoke:docker-driver", "."); err != nil {
		t.Fatalf("docker-driver build: %v", err)
	}
	if out, err := s.Docker(ctx, "", "run", "--rm", "e2e/engine-smoke:docker-driver", "cat", "/x"); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "\ndocker-driver") && strings.TrimSpace(string(out)) != "docker-driver" {
		t.Errorf("docker run of the docker-driver image (on the bridge): %v\n%s", err, out)
	}

	multi, err := s.StartMultiNodeBuilder(ctx)
	if err != nil {
		t.Fatalf("StartMultiNodeBuilder: %v", err)
	}
	before := map[string]int{}
	for _, p := range MultiNodePlatforms {
		before[p] = multi.Snapshots(p)
	}
	tag := s.Hub + "/e2e/multi:smoke"
	if _, err := s.Docker(ctx, dir, "buildx", "build", "--builder", multi.Name, "--platform", "linux/amd64,linux/arm64",
		"--build-arg", "X=multi", "--push", "-t", tag, "."); err != nil {
		t.Fatalf("multi-node build: %v", err)
	}
	// Each node built its own platform: each one's snapshotter grew.
	for _, p := range MultiNodePlatforms {
		n := multi.Snapshots(p)
		t.Logf("node %s: %d snapshots before the build, %d after", p, before[p], n)
		if n <= before[p] {
			t.Errorf("node %s has %d snapshots after the build, %d before: it built nothing", p, n, before[p])
		}
	}

	sock := strings.TrimPrefix(s.DockerHost, "unix://")
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("the engine's socket %s is still there", sock)
	}
	if out, _ := exec.Command("grep", "-c", o.WorkDir, "/proc/self/mounts").Output(); strings.TrimSpace(string(out)) != "0" {
		t.Errorf("mounts left under %s: %s", o.WorkDir, out)
	}
	if out, err := exec.Command("ip", "link", "show", s.EngineBridge).CombinedOutput(); err == nil {
		t.Errorf("the engine's bridge %s is still there:\n%s", s.EngineBridge, out)
	}
}
