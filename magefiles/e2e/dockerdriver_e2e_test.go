//go:build e2e

package e2e

import "testing"

// TestLocalBuildOnTheDockerDriver: `buildGPUTorch` with the engine's own
// builder (BUILDX_BUILDER=default, the docker driver: Docker Desktop's
// default and a plain Docker Engine's) puts the base and pt-gpu, built on
// that base, in the engine with --output type=image,push=false, and changes
// no registry. The stack's engine is dockerd 20.10 with its built-in
// BuildKit; its RUN steps run on the stack engine's own bridge.
func TestLocalBuildOnTheDockerDriver(t *testing.T) {
	if stk.EngineBridge == "" {
		t.Fatal("the stack's engine has no bridge, so its docker driver cannot run RUN steps (see the stack log)")
	}
	localBuildGPUTorch(t, map[string]string{"BUILDX_BUILDER": "default"}, "--output type=image,push=false")
}

// TestLocalArm64OnTheDockerDriver: `localArm64 -image=tf2-cpu` with the
// engine's own builder leaves an arm64 image in the engine that `docker run
// --platform linux/arm64` runs (QEMU), and changes no registry.
func TestLocalArm64OnTheDockerDriver(t *testing.T) {
	if stk.EngineBridge == "" {
		t.Fatal("the stack's engine has no bridge, so its docker driver cannot run RUN steps (see the stack log)")
	}
	localArm64(t, map[string]string{"BUILDX_BUILDER": "default"})
}
