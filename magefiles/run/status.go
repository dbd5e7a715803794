package run

import (
	"fmt"
	"io"
	"os"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

// Status prints coloured status lines to a writer; colour is off when
// NO_COLOR is set or the writer is not a terminal.
type Status struct {
	w                     io.Writer
	ok, fail, info, faint *color.Color
}

// NewStatus returns a Status for w.
func NewStatus(w io.Writer) *Status {
	s := &Status{w: w, ok: color.New(color.FgGreen, color.Bold), fail: color.New(color.FgRed, color.Bold),
		info: color.New(color.FgCyan, color.Bold), faint: color.New(color.Faint)}
	if !colorFor(w) {
		for _, c := range []*color.Color{s.ok, s.fail, s.info, s.faint} {
			c.DisableColor()
		}
	}
	return s
}

func colorFor(w io.Writer) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	if os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// Step announces work starting.
func (s *Status) Step(format string, a ...any) { s.line(s.info, "==>", format, a...) }

// OK reports success.
func (s *Status) OK(format string, a ...any) { s.line(s.ok, "ok ", format, a...) }

// Fail reports a failure.
func (s *Status) Fail(format string, a ...any) { s.line(s.fail, "ERR", format, a...) }

// Info prints a plain detail line.
func (s *Status) Info(format string, a ...any) { s.line(s.faint, "   ", format, a...) }

func (s *Status) line(c *color.Color, tag, format string, a ...any) {
	fmt.Fprintf(s.w, "%s %s\n", c.Sprint(tag), fmt.Sprintf(format, a...))
}

// Warn reports a problem the run works around.
func (s *Status) Warn(format string, a ...any) { s.line(s.fail, "WRN", format, a...) }
