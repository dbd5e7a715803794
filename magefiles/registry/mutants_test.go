package registry

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"context"
	"testing"
	"time"
)

// REGISTRY_MIRRORS names Docker Hub as people write it (docker.io); the
// references the recipes use (ubuntu:20.04) resolve to index.docker.io.
// The mirror must still be asked: Docker Hub is never contacted here.
func TestADockerHubMirrorIsUsedWhateverTheHubIsCalled(t *testing.T) {
	mirror := newMemRegistry(t)
	md := pushImage(t, platformImage(t, "linux", "amd64", 1, nil), mirror+"/library/ubuntu:20.04")
	for _, key := range []string{"docker.io", "index.docker.io"} {
		c := testClient(WithMirrors(map[string]string{key: mirror}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := c.Resolve(ctx, "ubuntu:20.04")
		cancel()
		if err != nil || got != md {
			t.Errorf("WithMirrors(%s): Resolve(ubuntu:20.04) = %s, %v; want the mirror's %s", key, got, err, md)
		}
	}
	// Other hosts are kept as given.
	c := testClient(WithMirrors(map[string]string{"127.0.0.1:5000": mirror}))
	if c.mirrors["127.0.0.1:5000"] != mirror {
		t.Errorf("mirrors %v, want 127.0.0.1:5000 kept", c.mirrors)
	}
}
