package inputs

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// dist is one file a pip index or find-links page offers.
type dist struct {
	project, version string
	yanked           bool
}

// checkPip asks the PEP 503 simple index for the project's page (and reads
// the requirement's find-links pages) and looks for a file of a version
// the specifier allows. Only yanked files match: an exact pin (==) still
// installs (PEP 592), so that is a warning; any other specifier finds
// nothing.
func (c *Checker) checkPip(ctx context.Context, r *Result) {
	in := r.Input
	project, _, _ := strings.Cut(in.Name, "[")
	idx := c.Sources.pipIndex(in) + "/" + normalizeProject(project) + "/"
	r.Asked = idx
	var all []dist
	var missingPages []string
	pages := append([]string{idx}, in.FindLinks...)
	for i, p := range pages {
		if i > 0 {
			p = c.Sources.URL(p)
		}
		ds, code, err := c.pipPage(ctx, p)
		switch {
		case err != nil:
			r.Status, r.Detail = Unreachable, err.Error()
			return
		case code == http.StatusNotFound || code == http.StatusGone:
			missingPages = append(missingPages, p)
		case code != http.StatusOK:
			httpResult(r, code, nil)
			r.Detail = "GET " + p + ": " + r.Detail
			return
		}
		all = append(all, ds...)
	}
	var versions, yanked []string
	for _, d := range all {
		if normalizeProject(d.project) != normalizeProject(project) || !satisfies(d.version, in.Version) {
			continue
		}
		if d.yanked {
			yanked = append(yanked, d.version)
		} else {
			versions = append(versions, d.version)
		}
	}
	switch {
	case len(versions) > 0:
		r.Status, r.Detail = OK, fmt.Sprintf("%d files, e.g. %s", len(versions), versions[len(versions)-1])
	case len(yanked) > 0 && strings.HasPrefix(in.Version, "==") && !strings.Contains(in.Version, ","):
		r.Status, r.Detail = Warn, "only yanked files of "+yanked[0]+": pip installs an exact pin of a yanked release (PEP 592), with a warning; move the pin off it"
	case len(yanked) > 0:
		r.Status, r.Detail = Missing, "only yanked files match ("+yanked[0]+"), which pip skips for a non-exact specifier"
	case len(missingPages) == len(pages):
		r.Status, r.Detail = Missing, "no project "+project+" on "+strings.Join(missingPages, " or ")
	default:
		r.Status, r.Detail = Missing, fmt.Sprintf("no file of %s%s on %s (%d files of the project there)", project, in.Version, strings.Join(pages, " or "), countProject(all, project))
	}
}

func countProject(ds []dist, project string) int {
	n := 0
	for _, d := range ds {
		if normalizeProject(d.project) == normalizeProject(project) {
			n++
		}
	}
	return n
}

var anchorRE = regexp.MustCompile(`(?is)<a\s([^>]*)>(.*?)</a>`)

// pipPage reads a simple-index or find-links page once.
func (c *Checker) pipPage(ctx context.Context, u string) ([]dist, int, error) {
	type page struct {
		ds   []dist
		code int
	}
	v, err := c.cached("pip "+u, func() (any, error) {
		body, code, err := c.get(ctx, u)
		if err != nil || code != http.StatusOK {
			return page{code: code}, err
		}
		defer body.Close()
		data, err := io.ReadAll(io.LimitReader(body, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("GET %s: reading: %w", u, err)
		}
		return page{ds: parseDists(string(data)), code: code}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	p := v.(page)
	return p.ds, p.code, nil
}

// parseDists reads the anchors of a PEP 503 page: each names a file,
// data-yanked marks it yanked (PEP 592).
func parseDists(page string) []dist {
	var out []dist
	for _, m := range anchorRE.FindAllStringSubmatch(page, -1) {
		attrs, text := m[1], html.UnescapeString(strings.TrimSpace(m[2]))
		name := path.Base(text)
		if un, err := url.PathUnescape(name); err == nil {
			name = un
		}
		project, version, ok := splitDistName(name)
		if !ok {
			continue
		}
		out = append(out, dist{project: project, version: version, yanked: strings.Contains(strings.ToLower(attrs), "data-yanked")})
	}
	return out
}

// splitDistName reads "name-version-....whl" or "name-version.tar.gz".
func splitDistName(file string) (project, version string, ok bool) {
	if base, isWheel := strings.CutSuffix(file, ".whl"); isWheel {
		parts := strings.Split(base, "-")
		if len(parts) < 5 {
			return "", "", false
		}
		return parts[0], parts[1], true
	}
	for _, ext := range []string{".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg"} {
		if base, ok := strings.CutSuffix(file, ext); ok {
			i := strings.LastIndex(base, "-")
			if ext == ".egg" {
				parts := strings.Split(base, "-")
				if len(parts) < 2 {
					return "", "", false
				}
				return parts[0], parts[1], true
			}
			if i <= 0 {
				return "", "", false
			}
			return base[:i], base[i+1:], true
		}
	}
	return "", "", false
}

var projectSep = regexp.MustCompile(`[-_.]+`)

// normalizeProject is PEP 503's name normalisation.
func normalizeProject(n string) string {
	return strings.ToLower(projectSep.ReplaceAllString(n, "-"))
}

// satisfies reports whether version v meets a specifier ("", "==1.2",
// "~=3.5.0", "~=2.10,<=2.16.5", ">=8.3.2", "==1.12.0+cpu", "==2.*"). It
// compares release numbers; pre-releases only satisfy an exact pin.
func satisfies(v, spec string) bool {
	if spec == "" {
		return !isPre(v)
	}
	for _, clause := range strings.Split(spec, ",") {
		op, want := splitOp(strings.TrimSpace(clause))
		if op != "==" && op != "===" && isPre(v) {
			return false
		}
		if !clauseHolds(v, op, want) {
			return false
		}
	}
	return true
}

func splitOp(clause string) (op, version string) {
	for _, o := range []string{"===", "==", "~=", "<=", ">=", "!=", "<", ">"} {
		if rest, ok := strings.CutPrefix(clause, o); ok {
			return o, strings.TrimSpace(rest)
		}
	}
	return "==", clause
}

func clauseHolds(v, op, want string) bool {
	switch op {
	case "===":
		return v == want
	case "==", "!=":
		eq := versionEqual(v, want)
		return eq == (op == "==")
	case "~=":
		rel := release(want)
		if len(rel) < 2 || compareRelease(release(v), rel) < 0 {
			return false
		}
		prefix := rel[:len(rel)-1]
		got := release(v)
		return len(got) >= len(prefix) && slices.Equal(got[:len(prefix)], prefix)
	case "<=":
		return compareRelease(release(v), release(want)) <= 0
	case ">=":
		return compareRelease(release(v), release(want)) >= 0
	case "<":
		return compareRelease(release(v), release(want)) < 0
	case ">":
		return compareRelease(release(v), release(want)) > 0
	}
	return false
}

// versionEqual: "==X" with a trailing ".*" is a prefix match; a local
// version ("+cpu") must match when the pin names one.
func versionEqual(v, want string) bool {
	if prefix, ok := strings.CutSuffix(want, ".*"); ok {
		p := release(prefix)
		got := release(v)
		return len(got) >= len(p) && slices.Equal(got[:len(p)], p)
	}
	vPub, vLocal, _ := strings.Cut(strings.ToLower(v), "+")
	wPub, wLocal, wHas := strings.Cut(strings.ToLower(want), "+")
	if wHas && vLocal != wLocal {
		return false
	}
	if isPre(vPub) || isPre(wPub) {
		return strings.TrimPrefix(vPub, "v") == strings.TrimPrefix(wPub, "v")
	}
	return compareRelease(release(vPub), release(wPub)) == 0
}

var (
	preRE  = regexp.MustCompile(`(?i)(a|b|rc|alpha|beta|dev|pre|c)\d*`)
	postRE = regexp.MustCompile(`(?i)[.-]?post\d*`)
)

func isPre(v string) bool {
	pub, _, _ := strings.Cut(v, "+")
	// post-releases (".post1") are releases.
	pub = postRE.ReplaceAllString(pub, "")
	return preRE.MatchString(pub)
}

// release is the numeric release segment of a version ("1.12.0+cpu" -> 1 12 0).
func release(v string) []int {
	v = strings.TrimPrefix(strings.ToLower(v), "v")
	v, _, _ = strings.Cut(v, "+")
	var out []int
	for _, part := range strings.Split(v, ".") {
		n, i := 0, 0
		for i < len(part) && part[i] >= '0' && part[i] <= '9' {
			n = n*10 + int(part[i]-'0')
			i++
		}
		if i == 0 {
			break
		}
		out = append(out, n)
		if i < len(part) {
			break
		}
	}
	return out
}

func compareRelease(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		x, y := 0, 0
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
