// Command flock is the install-plan stand-in bases' flock(1): busybox has
// none. It does what build_slot.sh asks of util-linux's flock, with the same
// system call: `flock [-n] FD` takes an exclusive lock on the open file FD
// inherited from the shell (so the lock stays with the shell's file after
// this process exits); with -n it exits 1 at once when another holds it.
// Built static for each architecture by the e2e tests.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	args := os.Args[1:]
	how := syscall.LOCK_EX
	if len(args) == 2 && (args[0] == "-n" || args[0] == "--nonblock") {
		how |= syscall.LOCK_NB
		args = args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: flock [-n] FD (the install-plan stand-in knows no other form)")
		os.Exit(64)
	}
	fd, err := strconv.Atoi(args[0])
	if err != nil || fd < 0 {
		fmt.Fprintf(os.Stderr, "flock: %q is not a file descriptor number\n", args[0])
		os.Exit(64)
	}
	if err := syscall.Flock(fd, how); err != nil {
		if err == syscall.EWOULDBLOCK {
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "flock: %v\n", err)
		os.Exit(66)
	}
}
