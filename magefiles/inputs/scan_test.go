package inputs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// found is one thing a recipe file names that comes from outside.
type found struct {
	kind  string // "url", "sha256", "md5", "git", "pip", "apt", "image"
	value string // the URL, checksum, "URL@REF", requirement, package, image
	file  string // relative to the repository root
}

var (
	urlRE     = regexp.MustCompile(`https?://[^\s"'<>]+`)
	shaRE     = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	md5RE     = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	assignRE  = regexp.MustCompile(`^\s*(?:local\s+|export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	pinRE     = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._\-\[\]]*)(==|~=|<=|>=|!=)(\S+)$`)
	debRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.+\-]+$`)
	bareReqRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._\-\[\]]*$`)
	argImgRE  = regexp.MustCompile(`^ARG\s+BASE_IMAGE=(\S+)`)
)

// scanRecipes reads every recipe file under root (the Dockerfiles,
// dockerfile_scripts/*.sh and *.txt) and returns what each names from
// outside. env gives the values of the variables the scripts take from the
// build (UBUNTU_VERSION).
func scanRecipes(root string, env map[string][]string) ([]found, error) {
	files, err := filepath.Glob(filepath.Join(root, "dockerfile_scripts", "*"))
	if err != nil {
		return nil, err
	}
	files = append(files, filepath.Join(root, "Dockerfile.cpu"), filepath.Join(root, "Dockerfile.gpu"))
	var out []found
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			continue
		}
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var got []found
		switch {
		case strings.HasSuffix(f, ".txt"):
			got = scanRequirements(string(data))
		default:
			got, err = scanScript(string(data), env)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		for _, g := range got {
			g.file = filepath.ToSlash(rel)
			out = append(out, g)
		}
	}
	return out, nil
}

// scanRequirements: every requirement line of a pip requirements file.
func scanRequirements(text string) []found {
	var out []found
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, found{kind: "pip", value: strings.ReplaceAll(line, " ", "")})
	}
	return out
}

// scanScript reads a shell script or Dockerfile.
func scanScript(text string, env map[string][]string) ([]found, error) {
	lines := strings.Split(text, "\n")
	vars := map[string][]string{}
	for k, v := range env {
		vars[k] = v
	}
	for _, line := range lines {
		if m := assignRE.FindStringSubmatch(line); m != nil && !isComment(line) {
			v := strings.TrimSuffix(strings.TrimSpace(m[2]), ";;")
			v = strings.Trim(v, `"'`)
			if !slices.Contains(vars[m[1]], v) {
				vars[m[1]] = append(vars[m[1]], v)
			}
		}
	}
	var out []found
	inPackages := false
	for _, line := range lines {
		if isComment(line) {
			continue
		}
		for _, u := range urlRE.FindAllString(line, -1) {
			exp, err := expand(u, vars, 0)
			if err != nil {
				return nil, fmt.Errorf("URL %s: %w", u, err)
			}
			for _, e := range exp {
				out = append(out, found{kind: "url", value: e})
			}
		}
		for _, s := range shaRE.FindAllString(line, -1) {
			out = append(out, found{kind: "sha256", value: s})
		}
		for _, s := range md5RE.FindAllString(line, -1) {
			out = append(out, found{kind: "md5", value: s})
		}
		words := strings.Fields(line)
		if i := slices.Index(words, "clone"); i > 0 && words[i-1] == "git" {
			g, err := scanClone(words[i+1:], vars)
			if err != nil {
				return nil, err
			}
			out = append(out, g...)
		}
		for _, w := range words {
			w = strings.Trim(w, `"'`)
			if m := pinRE.FindStringSubmatch(w); m != nil && !strings.ContainsAny(w, "*$") {
				out = append(out, found{kind: "pip", value: w})
			}
		}
		if len(words) > 1 && words[0] == "pip_install" {
			for _, w := range words[1:] {
				if bareReqRE.MatchString(w) {
					out = append(out, found{kind: "pip", value: w})
				}
			}
		}
		debs := []string(nil)
		switch {
		case len(words) > 1 && words[0] == "apt_install":
			debs = words[1:]
		case strings.HasPrefix(strings.TrimSpace(line), "packages=(") || strings.HasPrefix(strings.TrimSpace(line), "packages+=("):
			_, rest, _ := strings.Cut(line, "(")
			debs = strings.Fields(rest)
			inPackages = !strings.Contains(rest, ")")
		case inPackages:
			debs = words
			inPackages = !strings.Contains(line, ")")
		}
		for _, d := range debs {
			if d = strings.TrimRight(d, ")"); debRE.MatchString(d) {
				out = append(out, found{kind: "apt", value: d})
			}
		}
		if m := argImgRE.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			out = append(out, found{kind: "image", value: m[1]})
		}
	}
	return out, nil
}

func isComment(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "#") }

// scanClone reads the arguments of `git clone`: --branch REF and the URL.
func scanClone(args []string, vars map[string][]string) ([]found, error) {
	var refs, urls []string
	for i := 0; i < len(args); i++ {
		a := strings.Trim(args[i], `"'`)
		switch {
		case a == "--branch" || a == "-b":
			if i+1 < len(args) {
				r, err := expand(strings.Trim(args[i+1], `"'`), vars, 0)
				if err != nil {
					return nil, err
				}
				refs = append(refs, r...)
				i++
			}
		case strings.HasPrefix(a, "https://"):
			urls = append(urls, a)
		}
	}
	if len(urls) == 0 || len(refs) == 0 {
		return nil, fmt.Errorf("git clone %s: want --branch REF and an https URL, so the ref can be declared", strings.Join(args, " "))
	}
	var out []found
	for _, u := range urls {
		for _, r := range refs {
			out = append(out, found{kind: "git", value: u + "@" + r})
		}
	}
	return out, nil
}

// expand expands ${NAME}, ${NAME:?msg}, ${NAME:-default}, ${NAME%GLOB} and
// $NAME in s, once for every value a variable takes.
func expand(s string, vars map[string][]string, depth int) ([]string, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%q: variables nest too deep", s)
	}
	i := strings.Index(s, "$")
	if i < 0 {
		return []string{s}, nil
	}
	var name, op, rest string
	if strings.HasPrefix(s[i:], "${") {
		end := matchingBrace(s, i+1)
		if end < 0 {
			return nil, fmt.Errorf("%q: unclosed ${", s)
		}
		inner := s[i+2 : end]
		n := identLen(inner)
		name, op, rest = inner[:n], inner[n:], s[end+1:]
	} else {
		n := identLen(s[i+1:])
		name, rest = s[i+1:i+1+n], s[i+1+n:]
	}
	values, ok := vars[name]
	if !ok {
		if def, isDef := strings.CutPrefix(op, ":-"); isDef {
			values = []string{def}
		} else {
			return nil, fmt.Errorf("%q: $%s is not set in the script or the test's environment", s, name)
		}
	}
	var out []string
	for _, v := range values {
		vs, err := expand(v, vars, depth+1)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if pat, ok := strings.CutPrefix(op, "%"); ok {
				v = trimSuffixGlob(v, pat)
			}
			tails, err := expand(rest, vars, depth)
			if err != nil {
				return nil, err
			}
			for _, t := range tails {
				out = append(out, s[:i]+v+t)
			}
		}
	}
	return out, nil
}

func matchingBrace(s string, open int) int {
	depth := 0
	for j := open; j < len(s); j++ {
		switch s[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func identLen(s string) int {
	n := 0
	for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || n > 0 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return n
}

// trimSuffixGlob is the shell's ${v%pat}: the shortest suffix matching pat removed.
func trimSuffixGlob(v, pat string) string {
	for i := len(v); i >= 0; i-- {
		if ok, _ := path.Match(pat, v[i:]); ok {
			return v[:i]
		}
	}
	return v
}
