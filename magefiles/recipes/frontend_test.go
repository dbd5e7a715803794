package recipes

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// The recipes build on every builder driver, including the docker driver of
// a Docker Engine whose built-in Dockerfile frontend is old (Debian's
// docker.io 20.10: Dockerfile 1.2) and with no `# syntax=` directive (which
// would pull a frontend image from Docker Hub on every builder). So the
// recipes keep to what that frontend accepts; the e2e suite builds the
// stand-in recipes, which keep to the same, on such an engine
// (TestLocalBuildOnTheDockerDriver).

// newSubstitution matches the ${VAR#word}, ${VAR%word} and ${VAR/a/b}
// substitutions (Dockerfile 1.7 and later) in the words the frontend
// expands.
var newSubstitution = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(#|%|/)`)

// oldFlags are the instruction flags Dockerfile 1.2 knows.
var oldFlags = map[string][]string{
	"from": {"--platform"},
	"run":  {"--mount"},
	"copy": {"--from", "--chown"},
	"add":  {"--chown"},
}

// shellForms are the instructions whose text the shell reads, not the
// frontend: the shell may use any substitution it has.
var shellForms = map[string]bool{"run": true, "cmd": true, "entrypoint": true, "shell": true, "healthcheck": true}

func TestRecipesKeepToTheOldFrontend(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"Dockerfile.cpu", "Dockerfile.gpu"} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		res, err := parser.Parse(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(res.AST.Children) == 0 {
			t.Fatalf("%s: no instructions", file)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(line), " ", ""), "#syntax=") {
				t.Errorf("%s: %q: a syntax directive pulls a frontend image on every builder; keep to the built-in frontend", file, line)
			}
		}
		for _, n := range res.AST.Children {
			instr := strings.ToLower(n.Value)
			where := file + ":" + strconv.Itoa(n.StartLine) + " " + n.Original
			if len(n.Heredocs) > 0 {
				t.Errorf("%s: a heredoc needs Dockerfile 1.4", where)
			}
			for _, f := range n.Flags {
				name, _, _ := strings.Cut(f, "=")
				if !slices.Contains(oldFlags[instr], name) {
					t.Errorf("%s: %s %s is not a Dockerfile 1.2 flag (known there: %v)", where, strings.ToUpper(instr), name, oldFlags[instr])
				}
			}
			if !shellForms[instr] {
				if m := newSubstitution.FindString(n.Original); m != "" {
					t.Errorf("%s: %s...} needs Dockerfile 1.7; Docker Engines before 26 refuse it (\"missing ':' in substitution\")", where, m)
				}
			}
		}
	}
}
