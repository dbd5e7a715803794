// Package recipe reads the Dockerfiles with BuildKit's own parser, to check a
// plan's build arguments against the ARGs the target stage can see before
// anything is built.
package recipe

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// builtinArgs are set by BuildKit itself and may always be passed.
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
	"BUILDKIT_INLINE_CACHE": true, "BUILDKIT_MULTI_PLATFORM": true, "SOURCE_DATE_EPOCH": true,
}

// stage is one FROM ... section.
type stage struct {
	name string   // lower-cased AS name, "" if none
	from string   // FROM argument, not expanded
	args []string // ARG names declared in the stage
	uses []string // names referred to by COPY --from and RUN --mount from=
	// nodes are the stage's instructions, FROM first (see Reads).
	nodes []*parser.Node
}

// Recipe is a parsed Dockerfile.
type Recipe struct {
	path       string
	globals    []string          // ARG names before the first FROM
	globalDefs map[string]string // their defaults
	stages     []stage
	// globalNodes are the instructions before the first FROM.
	globalNodes []*parser.Node
}

// Parse reads a Dockerfile; path is only used in messages.
func Parse(path string, content []byte) (*Recipe, error) {
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	r := &Recipe{path: path, globalDefs: map[string]string{}}
	for _, n := range res.AST.Children {
		words := nodeWords(n)
		if len(r.stages) > 0 && !strings.EqualFold(n.Value, "FROM") {
			r.stages[len(r.stages)-1].nodes = append(r.stages[len(r.stages)-1].nodes, n)
		}
		switch strings.ToUpper(n.Value) {
		case "FROM":
			st := stage{}
			if len(words) > 0 {
				st.from = words[0]
			}
			if len(words) >= 3 && strings.EqualFold(words[1], "AS") {
				st.name = strings.ToLower(words[2])
			}
			st.nodes = []*parser.Node{n}
			r.stages = append(r.stages, st)
		case "ARG":
			if len(r.stages) == 0 {
				r.globalNodes = append(r.globalNodes, n)
			}
			for _, w := range words {
				k, v, hasDefault := strings.Cut(w, "=")
				if len(r.stages) == 0 {
					r.globals = append(r.globals, k)
					if hasDefault {
						r.globalDefs[k] = v
					}
				} else {
					cur := &r.stages[len(r.stages)-1]
					cur.args = append(cur.args, k)
				}
			}
		case "COPY", "ADD", "RUN":
			if len(r.stages) == 0 {
				continue
			}
			cur := &r.stages[len(r.stages)-1]
			for _, f := range n.Flags {
				cur.uses = append(cur.uses, flagRefs(f)...)
			}
		}
	}
	if len(r.stages) == 0 {
		return nil, fmt.Errorf("%s has no FROM instruction", path)
	}
	return r, nil
}

func nodeWords(n *parser.Node) []string {
	var out []string
	for w := n.Next; w != nil; w = w.Next {
		out = append(out, w.Value)
	}
	return out
}

// flagRefs extracts stage names from --from=X and --mount=...,from=X.
func flagRefs(flag string) []string {
	switch {
	case strings.HasPrefix(flag, "--from="):
		return []string{strings.TrimPrefix(flag, "--from=")}
	case strings.HasPrefix(flag, "--mount="):
		for _, kv := range strings.Split(strings.TrimPrefix(flag, "--mount="), ",") {
			if v, ok := strings.CutPrefix(kv, "from="); ok {
				return []string{v}
			}
		}
	}
	return nil
}

// Stages lists the named stages.
func (r *Recipe) Stages() []string {
	var out []string
	for _, s := range r.stages {
		if s.name != "" {
			out = append(out, s.name)
		}
	}
	return out
}

// Visible returns every ARG name that a build of target can receive: the
// global ARGs (used by FROM lines) and the ARGs of the target stage and of
// every stage it is built from, with FROM lines expanded using args.
func (r *Recipe) Visible(target string, args map[string]string) (map[string]bool, error) {
	visible := map[string]bool{}
	for _, g := range r.globals {
		visible[g] = true
	}
	err := r.walk(target, args, func(i int, _ []string) {
		for _, a := range r.stages[i].args {
			visible[a] = true
		}
	})
	if err != nil {
		return nil, err
	}
	return visible, nil
}

// globalEnv is the value of every global ARG under args (defaults that refer
// to other globals resolved).
func (r *Recipe) globalEnv(args map[string]string) envGetter {
	env := map[string]string{}
	for k, v := range r.globalDefs {
		env[k] = v
	}
	for _, g := range r.globals {
		if v, ok := args[g]; ok {
			env[g] = v
		}
	}
	// Resolve global defaults that refer to other globals (ARG B=${A}).
	lex := shell.NewLex('\\')
	for _, g := range r.globals {
		if _, given := args[g]; given {
			continue
		}
		if v, ok := r.globalDefs[g]; ok && strings.Contains(v, "$") {
			if x, _, err := lex.ProcessWord(v, envGetter(env)); err == nil {
				env[g] = x
			}
		}
	}
	return env
}

// walk visits target and every stage it is built from or reads from (FROM
// lines expanded with args, COPY --from, RUN --mount from=), each once, a
// stage after the stages it reads; refs are the stage's FROM (expanded) and
// --from names that are not stages of the recipe.
func (r *Recipe) walk(target string, args map[string]string, visit func(i int, refs []string)) error {
	idx := r.stageIndex(target)
	if idx < 0 {
		return fmt.Errorf("%s has no stage %q (stages: %s)", r.path, target, strings.Join(r.Stages(), ", "))
	}
	env := r.globalEnv(args)
	lex := shell.NewLex('\\')
	seen := map[int]bool{}
	var walk func(i int) error
	walk = func(i int) error {
		if seen[i] {
			return nil
		}
		seen[i] = true
		st := r.stages[i]
		from := st.from
		if strings.Contains(from, "$") {
			var err error
			if from, _, err = lex.ProcessWord(st.from, env); err != nil {
				return fmt.Errorf("%s: expanding FROM %s: %w", r.path, st.from, err)
			}
		}
		var outside []string
		for _, ref := range append([]string{from}, st.uses...) {
			j := r.stageIndex(ref)
			if j < 0 || j == i {
				outside = append(outside, ref)
				continue
			}
			if err := walk(j); err != nil {
				return err
			}
		}
		visit(i, outside)
		return nil
	}
	return walk(idx)
}

func (r *Recipe) stageIndex(name string) int {
	name = strings.ToLower(name)
	for i, s := range r.stages {
		if s.name != "" && s.name == name {
			return i
		}
	}
	return -1
}

// UndeclaredError names the build arguments no ARG declares.
type UndeclaredError struct {
	Image, Recipe, Target string
	Args                  []string
}

func (e *UndeclaredError) Error() string {
	return fmt.Sprintf("image %s: build argument(s) %s not declared by any ARG that stage %q of %s can see; declare them with ARG in that stage (or its base stage) or stop passing them",
		e.Image, strings.Join(e.Args, ", "), e.Target, e.Recipe)
}

// CheckArgs fails when a build argument is not declared by an ARG that the
// target stage can see.
func (r *Recipe) CheckArgs(image, target string, args map[string]string) error {
	visible, err := r.Visible(target, args)
	if err != nil {
		return fmt.Errorf("image %s: %w", image, err)
	}
	var missing []string
	for k := range args {
		if !visible[k] && !builtinArgs[k] && !isPlatformArg(k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return &UndeclaredError{Image: image, Recipe: r.path, Target: target, Args: missing}
	}
	return nil
}

func isPlatformArg(k string) bool {
	for _, p := range []string{"TARGET", "BUILD"} {
		switch k {
		case p + "PLATFORM", p + "OS", p + "ARCH", p + "VARIANT":
			return true
		}
	}
	return false
}

type envGetter map[string]string

func (e envGetter) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envGetter) Keys() []string {
	out := make([]string, 0, len(e))
	for k := range e {
		out = append(out, k)
	}
	return out
}

// Differences lists how two recipes differ in shape: their named stages, and
// for each stage the ARGs it can see, both as published (FRAMEWORK_BASE
// unset) and as built locally (FRAMEWORK_BASE=base). Stand-in recipes of the
// tests must have the shape of the real ones; nil means they do.
func Differences(real, other *Recipe) ([]string, error) {
	if !slices.Equal(real.Stages(), other.Stages()) {
		return []string{fmt.Sprintf("stages differ: %s has %v, %s has %v", real.path, real.Stages(), other.path, other.Stages())}, nil
	}
	var diffs []string
	for _, stage := range real.Stages() {
		for _, args := range []map[string]string{nil, {"FRAMEWORK_BASE": "base"}} {
			rv, err := real.Visible(stage, args)
			if err != nil {
				return nil, err
			}
			ov, err := other.Visible(stage, args)
			if err != nil {
				return nil, err
			}
			onlyReal, onlyOther := setMinus(rv, ov), setMinus(ov, rv)
			if len(onlyReal)+len(onlyOther) > 0 {
				diffs = append(diffs, fmt.Sprintf("stage %q (args %v): ARGs only in %s: %v; only in %s: %v",
					stage, args, real.path, onlyReal, other.path, onlyOther))
			}
		}
	}
	return diffs, nil
}

func setMinus(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
