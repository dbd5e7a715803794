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
	missing := missingPackages(ctx, pkgs)
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("packages %v are missing and installing them needs root (apt-get install %v)", missing, missing)
	}
	return (&aptState{log: log}).install(ctx, missing)
}
