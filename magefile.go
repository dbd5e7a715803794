//go:build ignore

// Zero-install bootstrap: `go run magefile.go <target>` runs any mage target
// on a machine that has only Go. With mage installed, `mage <target>` is the same.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
