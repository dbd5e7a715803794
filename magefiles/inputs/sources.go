package inputs

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Variables lists the environment variables the check reads besides
// REGISTRY_MIRRORS (read with the other settings).
var Variables = []string{"INPUT_MIRRORS", "PIP_INDEX_URL", "INPUTS_JOBS"}

// Sources says where the checks ask. Declared URLs stay as the recipes have
// them; a mirror only changes where the question goes.
type Sources struct {
	// Mirrors rewrite URL prefixes (INPUT_MIRRORS), longest first.
	Mirrors []Mirror
	// PipIndex replaces PyPI's simple index (PIP_INDEX_URL), "" for PyPI.
	PipIndex string
	// Jobs is how many questions are in flight at once (INPUTS_JOBS).
	Jobs int
}

// Mirror sends every URL that starts with From to To instead.
type Mirror struct{ From, To string }

// ParseSources reads INPUT_MIRRORS ("PREFIX=MIRROR,...", each an http(s)
// URL), PIP_INDEX_URL (a PEP 503 simple index URL) and INPUTS_JOBS (1 to
// 256, default DefaultJobs).
func ParseSources(env func(string) (string, bool)) (Sources, error) {
	var s Sources
	var errs []string
	if v, _ := env("INPUT_MIRRORS"); strings.TrimSpace(v) != "" {
		for _, pair := range strings.Split(v, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			from, to, ok := strings.Cut(pair, "=")
			if !ok || !isHTTPURL(from) || !isHTTPURL(to) {
				errs = append(errs, fmt.Sprintf("INPUT_MIRRORS=%q: %q is not PREFIX=MIRROR with two http(s) URLs (for example https://pypi.org/simple=http://pypi.mirror.example/simple)", v, pair))
				continue
			}
			s.Mirrors = append(s.Mirrors, Mirror{From: from, To: to})
		}
		sort.SliceStable(s.Mirrors, func(i, j int) bool { return len(s.Mirrors[i].From) > len(s.Mirrors[j].From) })
	}
	if v, _ := env("PIP_INDEX_URL"); strings.TrimSpace(v) != "" {
		v = strings.TrimSpace(v)
		if !isHTTPURL(v) {
			errs = append(errs, fmt.Sprintf("PIP_INDEX_URL=%q: must be the http(s) URL of a PEP 503 simple index (default %s)", v, PyPI))
		}
		s.PipIndex = strings.TrimSuffix(v, "/")
	}
	s.Jobs = DefaultJobs
	if v, _ := env("INPUTS_JOBS"); strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 256 {
			errs = append(errs, fmt.Sprintf("INPUTS_JOBS=%q: must be a whole number from 1 to 256 (unset: %d)", v, DefaultJobs))
		}
		s.Jobs = n
	}
	if len(errs) > 0 {
		return Sources{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return s, nil
}

func isHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// URL is where to ask for u: u with its longest matching mirror prefix
// replaced.
func (s Sources) URL(u string) string {
	for _, m := range s.Mirrors {
		if strings.HasPrefix(u, m.From) {
			return m.To + strings.TrimPrefix(u, m.From)
		}
	}
	return u
}

// pipIndex is where to ask for a pip input's index.
func (s Sources) pipIndex(in Input) string {
	idx := in.Source
	if idx == PyPI && s.PipIndex != "" {
		idx = s.PipIndex
	}
	return strings.TrimSuffix(s.URL(idx), "/")
}
