package targets

import (
	"context"
	"fmt"

	"github.com/determined-ai/environments/magefiles/ci"
)

// CIMatrix prints the jobs of the CI release workflow, one a line: job name,
// WITH_MPI, image, its base and its platforms. The list is made from the catalog
// and magefiles/variant.Matrix; reads nothing.
func CIMatrix(ctx context.Context) error {
	lines, err := ci.MatrixLines()
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}

// CIConfig prints the CircleCI config (.circleci/config.yml): the release
// workflow on main and the development workflow (REGISTRY_REPO=environments-dev,
// no NGC, behind the approval job request-publish-dev-docker) on other
// branches, one job per framework image and WITH_MPI value (the old 19 per
// workflow, nothing else: Determined's release tooling asserts that set).
// Reads nothing.
func CIConfig(ctx context.Context) error {
	cfg, err := ci.Config()
	if err != nil {
		return err
	}
	fmt.Print(cfg)
	return nil
}
