package recipe

import (
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Reads is what a build of one stage reads besides its build arguments: the
// text of the instructions it runs, the build-context paths they read and
// the images from outside the recipe they start from.
type Reads struct {
	// Text is every instruction built, as written: the global ARGs, then the
	// stages in build order (each after the stages it is built from).
	Text []string
	// Copies are the build-context paths COPY and ADD read (as written,
	// variables expanded; they may be globs).
	Copies []string
	// Mounts are the RUN --mount=type=bind mounts of the build context.
	Mounts []Mount
	// Images are the images from outside the recipe: expanded FROM lines and
	// --from names that are not stages ("scratch" excluded), in build order.
	Images []string
}

// Mount is one bind mount of the build context into a RUN step.
type Mount struct {
	Source  string // context path ("." when not given)
	Target  string // where the RUN step sees it
	Command string // the RUN instruction as written (heredocs included)
}

// Reads returns what a build of target reads under the build arguments args.
func (r *Recipe) Reads(target string, args map[string]string) (Reads, error) {
	var out Reads
	for _, n := range r.globalNodes {
		out.Text = append(out.Text, nodeText(n))
	}
	env := r.globalEnv(args)
	for k, v := range args {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	lex := shell.NewLex('\\')
	expand := func(w string) string {
		if !strings.Contains(w, "$") {
			return w
		}
		if x, _, err := lex.ProcessWord(w, env); err == nil {
			return x
		}
		return w
	}
	seenImage := map[string]bool{}
	err := r.walk(target, args, func(i int, refs []string) {
		for _, ref := range refs {
			if ref != "" && !strings.EqualFold(ref, "scratch") && !seenImage[ref] {
				seenImage[ref] = true
				out.Images = append(out.Images, ref)
			}
		}
		for _, n := range r.stages[i].nodes {
			out.Text = append(out.Text, nodeText(n))
			switch strings.ToUpper(n.Value) {
			case "COPY", "ADD":
				out.Copies = append(out.Copies, copySources(n, expand)...)
			case "RUN":
				out.Mounts = append(out.Mounts, bindMounts(n, expand)...)
			}
		}
	})
	if err != nil {
		return Reads{}, err
	}
	return out, nil
}

func nodeText(n *parser.Node) string {
	if len(n.Heredocs) == 0 {
		return n.Original
	}
	var b strings.Builder
	b.WriteString(n.Original)
	for _, h := range n.Heredocs {
		b.WriteString("\n")
		b.WriteString(h.Content)
	}
	return b.String()
}

// copySources are the context paths a COPY or ADD reads: none with --from
// (another stage or an image), no URLs, no heredocs.
func copySources(n *parser.Node, expand func(string) string) []string {
	for _, f := range n.Flags {
		if strings.HasPrefix(f, "--from=") {
			return nil
		}
	}
	words := nodeWords(n)
	if len(words) < 2 {
		return nil
	}
	var out []string
	for _, w := range words[:len(words)-1] {
		if strings.HasPrefix(w, "<<") || strings.Contains(w, "://") || strings.HasPrefix(w, "git@") {
			continue
		}
		out = append(out, expand(w))
	}
	return out
}

// bindMounts are the RUN step's bind mounts of the build context (mounts
// from another stage or image are not context reads).
func bindMounts(n *parser.Node, expand func(string) string) []Mount {
	var out []Mount
	for _, f := range n.Flags {
		spec, ok := strings.CutPrefix(f, "--mount=")
		if !ok {
			continue
		}
		kind, source, target, from := "bind", ".", "", ""
		for _, kv := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch strings.ToLower(k) {
			case "type":
				kind = v
			case "source", "src":
				source = expand(v)
			case "target", "dst", "destination":
				target = expand(v)
			case "from":
				from = v
			}
		}
		if kind == "bind" && from == "" {
			out = append(out, Mount{Source: source, Target: target, Command: nodeText(n)})
		}
	}
	return out
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// ArgsRead lists the build arguments Reads depends on: the global ARGs (FROM
// lines see them) and every variable named in a FROM, COPY or ADD word or a
// RUN --mount flag. Reads gives the same answer for two argument maps that
// agree on these.
func (r *Recipe) ArgsRead() []string {
	out := slices.Clone(r.globals)
	add := func(w string) {
		for _, m := range varRef.FindAllStringSubmatch(w, -1) {
			out = append(out, m[1])
		}
	}
	for _, st := range r.stages {
		add(st.from)
		for _, n := range st.nodes {
			switch strings.ToUpper(n.Value) {
			case "COPY", "ADD":
				for _, w := range nodeWords(n) {
					add(w)
				}
			case "RUN":
				for _, f := range n.Flags {
					add(f)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
