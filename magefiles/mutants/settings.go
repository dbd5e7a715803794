package mutants

import (
	"fmt"
	"strconv"
	"strings"
)

// The variables the mutants target reads.
const (
	PackagesEnv = "MUTANTS_PACKAGES" // comma-separated package directories; default all
	WorkersEnv  = "MUTANTS_WORKERS"  // mutants tested at once; default 1
	TimeoutEnv  = "MUTANTS_TIMEOUT"  // timeout coefficient; default 10
	EnforceEnv  = "MUTANTS_ENFORCE"  // 0 reports without failing; default 1
	SlowEnv     = "MUTANTS_SLOW"     // 1 keeps the slow tests; default 0
)

// Settings parses the variables into Options (Root, CacheDir, WorkDir, Out
// and Verbose are left to the caller). lookup is os.LookupEnv's shape.
func Settings(lookup func(string) (string, bool)) (Options, error) {
	o := Options{Workers: 1, TimeoutCoefficient: 10, Goal: DefaultGoal(), Enforce: true}
	if v, ok := lookup(PackagesEnv); ok && strings.TrimSpace(v) != "" {
		known := map[string]bool{}
		for _, p := range Packages() {
			known[p] = true
		}
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if !known[p] {
				return Options{}, fmt.Errorf("%s=%q: unknown package %q (known: %s)", PackagesEnv, v, p, strings.Join(Packages(), ", "))
			}
			o.Packages = append(o.Packages, p)
		}
	}
	var err error
	if o.Workers, err = positive(lookup, WorkersEnv, o.Workers, 4); err != nil {
		return Options{}, err
	}
	if o.TimeoutCoefficient, err = positive(lookup, TimeoutEnv, o.TimeoutCoefficient, 100); err != nil {
		return Options{}, err
	}
	if v, ok := lookup(SlowEnv); ok && v != "" {
		switch v {
		case "1":
			o.SlowTests = true
		case "0":
		default:
			return Options{}, fmt.Errorf("%s=%q: want 1 (keep the slow tests) or 0", SlowEnv, v)
		}
	}
	if v, ok := lookup(EnforceEnv); ok && v != "" {
		switch v {
		case "0":
			o.Enforce = false
		case "1":
		default:
			return Options{}, fmt.Errorf("%s=%q: want 1 (fail below the goal) or 0 (report only)", EnforceEnv, v)
		}
	}
	return o, nil
}

// positive reads a whole number between 1 and most, def when unset.
func positive(lookup func(string) (string, bool), name string, def, most int) (int, error) {
	v, ok := lookup(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, fmt.Errorf("%s=%q: want a whole number from 1 to %d", name, v, most)
	}
	return n, nil
}
