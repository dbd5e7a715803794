package bench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Line formats one figure line: "bench <name>: <number>", the number with
// prec decimals. Lines that do not start with "bench " are notes.
func Line(name string, v float64, prec int) string {
	return "bench " + name + ": " + strconv.FormatFloat(v, 'f', prec, 64)
}

// CriticalPath returns the longest chain of durations through the
// dependency graph (each image after the images in deps[image]) and the
// chain itself, first job first. Every image in deps must have a duration;
// images without deps are chains of their own.
func CriticalPath(durs map[string]time.Duration, deps map[string][]string) (time.Duration, []string, error) {
	names := make([]string, 0, len(durs))
	for n := range durs {
		names = append(names, n)
	}
	slices.Sort(names) // deterministic ties
	for n, ds := range deps {
		if _, ok := durs[n]; !ok {
			return 0, nil, fmt.Errorf("critical path: no duration for %q", n)
		}
		for _, d := range ds {
			if _, ok := durs[d]; !ok {
				return 0, nil, fmt.Errorf("critical path: %q depends on %q, which has no duration", n, d)
			}
		}
	}
	type best struct {
		total time.Duration
		prev  string
	}
	memo := map[string]best{}
	state := map[string]int{} // 1 visiting, 2 done
	var walk func(n string) (time.Duration, error)
	walk = func(n string) (time.Duration, error) {
		switch state[n] {
		case 1:
			return 0, fmt.Errorf("critical path: dependency cycle through %q", n)
		case 2:
			return memo[n].total, nil
		}
		state[n] = 1
		b := best{}
		for _, d := range deps[n] {
			t, err := walk(d)
			if err != nil {
				return 0, err
			}
			if t > b.total || b.prev == "" {
				b = best{total: t, prev: d}
			}
		}
		b.total += durs[n]
		memo[n], state[n] = b, 2
		return b.total, nil
	}
	var longest time.Duration
	end := ""
	for _, n := range names {
		t, err := walk(n)
		if err != nil {
			return 0, nil, err
		}
		if t > longest || end == "" {
			longest, end = t, n
		}
	}
	var chain []string
	for n := end; n != ""; n = memo[n].prev {
		chain = append(chain, n)
	}
	slices.Reverse(chain)
	return longest, chain, nil
}

// Sum adds the durations.
func Sum(durs map[string]time.Duration) time.Duration {
	var t time.Duration
	for _, d := range durs {
		t += d
	}
	return t
}

// Ratio is num/den; den must be positive.
func Ratio(num, den time.Duration) (float64, error) {
	if den <= 0 {
		return 0, fmt.Errorf("ratio: denominator %s is not positive", den)
	}
	if num < 0 {
		return 0, fmt.Errorf("ratio: numerator %s is negative", num)
	}
	return float64(num) / float64(den), nil
}

// Median of the durations (the mean of the middle two for an even count).
func Median(ds []time.Duration) (time.Duration, error) { return median(ds) }

// MedianRatio is the median of ratios (the mean of the middle two for an
// even count).
func MedianRatio(rs []float64) (float64, error) { return median(rs) }

func median[T time.Duration | float64](xs []T) (T, error) {
	if len(xs) == 0 {
		return 0, errors.New("median of no values")
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m], nil
	}
	return (s[m-1] + s[m]) / 2, nil
}

// Ms is d in milliseconds, Sec in seconds.
func Ms(d time.Duration) float64  { return float64(d) / float64(time.Millisecond) }
func Sec(d time.Duration) float64 { return d.Seconds() }

// Goal is the target of one figure: the value must be at most Max, or
// satisfy Met when that is set.
type Goal struct {
	Max float64
	Met func(v float64) bool // overrides Max when set
	Say string               // how the goal reads in the note, e.g. "<= 10"
}

// goalNote is the note line after a figure: "  goal <= 10: met".
func goalNote(g Goal, v float64) string {
	met := v <= g.Max
	if g.Met != nil {
		met = g.Met(v)
	}
	verdict := "met"
	if !met || math.IsNaN(v) {
		verdict = "MISSED"
	}
	return "  goal " + g.Say + ": " + verdict
}
