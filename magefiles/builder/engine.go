package builder

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/determined-ai/environments/magefiles/run"
)

// Driver parses the builder's driver from `docker buildx inspect` output
// (its first "Driver:" line); "" when there is none.
func Driver(inspect string) string {
	for _, line := range strings.Split(inspect, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Driver:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// CheckEngine makes sure a Docker Engine answers (a local build loads its
// images into it) and returns the engine's platform, like linux/amd64.
func CheckEngine(ctx context.Context, r *run.Runner) (string, error) {
	out, err := r.Output(ctx, "docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")
	if err != nil || !strings.Contains(out, "/") {
		where := "the current docker context (`docker context ls`; DOCKER_HOST is not set)"
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			where = "DOCKER_HOST=" + h
		}
		if err == nil {
			err = fmt.Errorf("`docker version` printed %q", out)
		}
		return "", fmt.Errorf("no Docker Engine is reachable at %s (%w): a local build loads its images into the engine; "+
			"start Docker (Docker Desktop, or `sudo systemctl start docker`) or point DOCKER_HOST at a running engine, then retry; "+
			"PUSH=1 (build and push every platform) and publish need no engine", where, err)
	}
	return out, nil
}
