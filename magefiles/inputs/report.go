package inputs

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteList prints each image's inputs: one block per image, one line per
// input (kind, what, where from).
func WriteList(w io.Writer, imgs []ImageInputs) error {
	total := 0
	for _, ii := range imgs {
		head := ii.Image
		if ii.Base != "" {
			head += " (built on " + ii.Base + ", whose inputs it also reads)"
		}
		if _, err := fmt.Fprintln(w, head); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i := 0; i < len(ii.Inputs); i++ {
			in := ii.Inputs[i]
			what := strings.TrimPrefix(in.String(), string(in.Kind)+" ")
			if in.Kind == Apt {
				// One line per repository, suite, architecture and script.
				names := []string{in.Name}
				for i+1 < len(ii.Inputs) && sameAptGroup(in, ii.Inputs[i+1]) {
					i++
					names = append(names, ii.Inputs[i].Name)
				}
				what = strings.Join(names, " ") + " (" + in.Suite + ", " + in.Arch + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", in.Kind, what, in.Describe())
		}
		total += len(ii.Inputs)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d images, %d inputs (%d distinct); `mage inputs -check` asks each source whether they still exist\n",
		len(imgs), total, distinct(imgs))
	return err
}

func sameAptGroup(a, b Input) bool {
	return b.Kind == Apt && a.Source == b.Source && a.Suite == b.Suite && a.Arch == b.Arch && a.Where == b.Where && a.When == b.When
}

func distinct(imgs []ImageInputs) int {
	seen := map[string]bool{}
	for _, ii := range imgs {
		for _, in := range ii.Inputs {
			seen[in.Key()] = true
		}
	}
	return len(seen)
}

// WriteResults prints the failed checks and warnings in full and a summary
// line; with all, every result.
func WriteResults(w io.Writer, rs []Result, elapsed time.Duration, all bool) error {
	counts := map[Status]int{}
	sources := map[string]bool{}
	for _, r := range rs {
		counts[r.Status]++
		sources[hostOf(r.Asked)] = true
		if !all && r.Status == OK {
			continue
		}
		fmt.Fprintf(w, "%-11s %s\n", strings.ToUpper(string(r.Status)), r.Input)
		fmt.Fprintf(w, "    images:  %s\n", strings.Join(r.Images, ", "))
		fmt.Fprintf(w, "    source:  %s (declared in %s)\n", r.Asked, r.Input.Where)
		if r.Detail != "" {
			fmt.Fprintf(w, "    said:    %s\n", r.Detail)
		}
		if r.Fix != "" {
			fmt.Fprintf(w, "    to do:   %s\n", r.Fix)
		}
	}
	_, err := fmt.Fprintf(w, "checked %d inputs at %d sources in %s: %d ok, %d warnings, %d missing, %d unreachable\n",
		len(rs), len(sources), elapsed.Round(time.Millisecond), counts[OK], counts[Warn], counts[Missing], counts[Unreachable])
	return err
}

// CheckError is returned when some inputs are missing or unreachable.
type CheckError struct {
	Failed []Result
	Total  int
}

// shownInError is how many failed inputs the error names; the report
// printed before it names them all.
const shownInError = 5

func (e *CheckError) Error() string {
	var names []string
	for i, r := range e.Failed {
		if i == shownInError {
			names = append(names, fmt.Sprintf("and %d more", len(e.Failed)-shownInError))
			break
		}
		names = append(names, fmt.Sprintf("%s %s (%s)", r.Status, r.Input, strings.Join(r.Images, ", ")))
	}
	return fmt.Sprintf("%d of %d external inputs are missing or unreachable: %s; each is listed above with its source and what to do",
		len(e.Failed), e.Total, strings.Join(names, "; "))
}

// Verdict is nil when every input was found (warnings allowed), else a
// *CheckError naming every failed one.
func Verdict(rs []Result) error {
	var failed []Result
	for _, r := range rs {
		if r.Failed() {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &CheckError{Failed: failed, Total: len(rs)}
}
