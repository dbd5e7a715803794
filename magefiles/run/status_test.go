package run

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestStatusHasNoColourWhenNotATerminal(t *testing.T) {
	var b bytes.Buffer
	s := NewStatus(&b)
	s.OK("built %s", "tf2-cpu")
	s.Fail("failed %s", "pt-cpu")
	if strings.Contains(b.String(), "\x1b[") {
		t.Errorf("escape codes written to a buffer: %q", b.String())
	}
	if b.String() != "ok  built tf2-cpu\nERR failed pt-cpu\n" {
		t.Errorf("got %q", b.String())
	}
}

func TestNoColorTurnsColourOffEvenOnATerminal(t *testing.T) {
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal to test with: %v", err)
	}
	defer tty.Close()
	t.Setenv("NO_COLOR", "1")
	if colorFor(tty) {
		t.Error("colour on with NO_COLOR set")
	}
}
