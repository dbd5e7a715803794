package targets

import (
	"context"
	"fmt"

	"github.com/determined-ai/environments/magefiles/ci"
)

// CIMatrix prints the variants CI publishes, one a line: name and settings.
// The list lives in one place (magefiles/variant.Matrix); reads nothing.
func CIMatrix(ctx context.Context) error {
	for _, l := range ci.MatrixLines() {
		fmt.Println(l)
	}
	return nil
}

// CIConfig prints the CircleCI config that publishes every matrix variant.
// Release mode on main, development mode (REGISTRY_REPO=environments-dev,
// NGC off) on other branches; .circleci/config.yml continues with it.
func CIConfig(ctx context.Context) error {
	fmt.Print(ci.Config())
	return nil
}
