package stack

import (
	"context"
	"fmt"
	"io"
	"os"
)

// InstallPackages installs the Debian packages that are missing, running
// apt-get update at most once; it needs root only when something is missing.
func InstallPackages(ctx context.Context, log io.Writer, pkgs ...string) error {
	a := &aptState{log: log}
	var missing []string
	for _, p := range pkgs {
		if !installed(ctx, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("packages %v are missing and installing them needs root (apt-get install %v)", missing, missing)
	}
	return a.install(ctx, missing)
}
