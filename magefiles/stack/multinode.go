package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// MultiNode is a builder of StartMultiNodeBuilder.
type MultiNode struct {
	Name  string            // the buildx builder
	Roots map[string]string // each node's buildkitd --root, by platform
}

// Snapshots counts the snapshots in the node of platform: it grows when the
// node builds something.
func (m *MultiNode) Snapshots(platform string) int {
	found, _ := filepath.Glob(filepath.Join(m.Roots[platform], "*", "snapshots", "snapshots", "*"))
	return len(found)
}

// MultiNodePlatforms are the platforms of the nodes of StartMultiNodeBuilder,
// one buildkitd each.
var MultiNodePlatforms = []string{"linux/amd64", "linux/arm64"}

// StartMultiNodeBuilder starts one more buildkitd per platform of
// MultiNodePlatforms (each building only its platform, --oci-worker-platform,
// the arm64 one under QEMU), joins them into one buildx builder with the
// remote driver (`docker buildx create`, then `docker buildx create
// --append`), bootstraps it and returns its name. A multi-platform build on it
// runs each platform on its own node, as on a cluster of native machines.
// It is opt-in, so that users who do not need it do not pay for two more
// daemons; Stop removes the builder and stops its daemons.
func (s *Stack) StartMultiNodeBuilder(ctx context.Context) (*MultiNode, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "e2e-multi-" + hex.EncodeToString(rnd[:])
	m := &MultiNode{Name: name, Roots: map[string]string{}}
	for i, platform := range MultiNodePlatforms {
		arch := platform[strings.LastIndex(platform, "/")+1:]
		dir := "buildkitd-" + name + "-" + arch
		addr, err := s.startBuildkitdNamed(ctx, dir, "--oci-worker-platform", platform)
		if err != nil {
			return nil, err
		}
		m.Roots[platform] = filepath.Join(s.workDir, dir, "root")
		args := []string{"buildx", "create", "--name", name, "--node", name + "-" + arch, "--driver", "remote", "--platform", platform}
		if i > 0 {
			args = append(args, "--append")
		}
		if _, err := s.Docker(ctx, "", append(args, addr)...); err != nil {
			return nil, err
		}
		if i == 0 {
			s.builders = append(s.builders, name)
		}
	}
	out, err := s.Docker(ctx, "", "buildx", "inspect", "--bootstrap", name)
	if err != nil {
		return nil, err
	}
	if n := strings.Count(string(out), "\nName:"); n < len(MultiNodePlatforms) {
		return nil, fmt.Errorf("stack: builder %s has %d nodes after bootstrap, want %d:\n%s", name, n, len(MultiNodePlatforms), out)
	}
	logf(s.log, "multi-node builder %s: %s", name, strings.Join(MultiNodePlatforms, " + "))
	return m, nil
}
