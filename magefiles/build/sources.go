package build

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/recipe"
)

// RecipeSources implements plan.Sources: it parses each recipe once (with
// BuildKit's parser, package recipe) and hashes what a stage reads:
//
//   - the text of the global ARGs, of the stage and of the stages it is built
//     from in the same build;
//   - the build-context files its COPY and ADD lines read;
//   - of each directory a RUN step bind-mounts from the context, the files
//     that RUN line names (their path below the mount, or a directory
//     holding them, appears in the line), plus the files those files name,
//     and so on; a RUN line that names none of them reads the whole mount.
//
// So editing a script only framework stages run changes the inputs of the
// framework images alone. Relative paths are relative to root.
type RecipeSources struct {
	root string

	mu      sync.Mutex
	recipes map[string]*recipe.Recipe
	files   map[string][]byte            // absolute path -> content
	sums    map[string]string            // absolute path -> "mode sha256" of the file
	walks   map[string][]string          // directory -> its files
	mounts  map[string][]string          // directory + RUN line -> the files it reads
	stages  map[string]plan.StageSources // recipe, context, target, args read -> result
	// argsRead are, per recipe, the arguments its answers depend on.
	argsRead map[string][]string
	refs     map[string][]int // mount directory + file -> the files of the mount it names
}

// NewSources returns the plan.Sources of the checkout at root. It reads each
// file once and remembers every answer: one plan asks about the same stages
// many times (17 images, a few recipes).
func NewSources(root string) *RecipeSources {
	return &RecipeSources{root: root, recipes: map[string]*recipe.Recipe{}, files: map[string][]byte{},
		sums: map[string]string{}, walks: map[string][]string{}, mounts: map[string][]string{},
		stages: map[string]plan.StageSources{}, argsRead: map[string][]string{}, refs: map[string][]int{}}
}

var _ plan.Sources = (*RecipeSources)(nil)

func (s *RecipeSources) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.root, p)
}

// Stage implements plan.Sources.
func (s *RecipeSources) Stage(recipePath, context, target string, args map[string]string) (plan.StageSources, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rc, err := s.parse(recipePath)
	if err != nil {
		return plan.StageSources{}, err
	}
	// Only the arguments the recipe's FROM/COPY/ADD/mount words can see
	// change the answer.
	var kb strings.Builder
	kb.WriteString(recipePath + "\x00" + context + "\x00" + target)
	for _, k := range s.argsRead[recipePath] {
		if v, ok := args[k]; ok {
			kb.WriteString("\x00" + k + "=" + v)
		}
	}
	key := kb.String()
	if ss, ok := s.stages[key]; ok {
		return ss, nil
	}
	ss, err := s.stage(rc, recipePath, context, target, args)
	if err == nil {
		s.stages[key] = ss
	}
	return ss, err
}

// parse parses a recipe once.
func (s *RecipeSources) parse(recipePath string) (*recipe.Recipe, error) {
	if rc, ok := s.recipes[recipePath]; ok {
		return rc, nil
	}
	content, err := os.ReadFile(s.abs(recipePath))
	if err != nil {
		return nil, fmt.Errorf("reading recipe: %w", err)
	}
	rc, err := parseOnce(recipePath, content)
	if err != nil {
		return nil, err
	}
	s.recipes[recipePath] = rc
	s.argsRead[recipePath] = rc.ArgsRead()
	return rc, nil
}

func (s *RecipeSources) stage(rc *recipe.Recipe, recipePath, context, target string, args map[string]string) (plan.StageSources, error) {
	reads, err := rc.Reads(target, args)
	if err != nil {
		return plan.StageSources{}, err
	}
	ctxDir := s.abs(context)
	var files []string
	for _, c := range reads.Copies {
		got, err := s.copied(ctxDir, c)
		if err != nil {
			return plan.StageSources{}, fmt.Errorf("stage %q of %s: COPY/ADD %s: %w", target, recipePath, c, err)
		}
		files = append(files, got...)
	}
	for _, m := range reads.Mounts {
		got, err := s.mounted(ctxDir, m)
		if err != nil {
			return plan.StageSources{}, fmt.Errorf("stage %q of %s: RUN --mount source=%s: %w", target, recipePath, m.Source, err)
		}
		files = append(files, got...)
	}
	slices.Sort(files)
	files = slices.Compact(files)

	h := sha256.New()
	for _, t := range reads.Text {
		h.Write([]byte("text " + strconv.Itoa(len(t)) + "\n" + t + "\n"))
	}
	for _, f := range files {
		sum, err := s.sum(f)
		if err != nil {
			return plan.StageSources{}, err
		}
		rel, _ := filepath.Rel(ctxDir, f)
		fmt.Fprintf(h, "file %s %s\n", filepath.ToSlash(rel), sum)
	}
	return plan.StageSources{Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Images: reads.Images}, nil
}

// sum is a file's mode bits that a COPY keeps and the sha256 of its content.
func (s *RecipeSources) sum(p string) (string, error) {
	if v, ok := s.sums[p]; ok {
		return v, nil
	}
	content, mode, err := s.read(p)
	if err != nil {
		return "", err
	}
	d := sha256.Sum256(content)
	v := fmt.Sprintf("%v %s", mode, hex.EncodeToString(d[:]))
	s.sums[p] = v
	return v, nil
}

// read returns a file's content (a symlink's target text) and its mode bits
// that a COPY keeps (the executable bits).
func (s *RecipeSources) read(p string) ([]byte, fs.FileMode, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, 0, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(p)
		return []byte(t), fs.ModeSymlink, err
	}
	c, ok := s.files[p]
	if !ok {
		if c, err = os.ReadFile(p); err != nil {
			return nil, 0, err
		}
		s.files[p] = c
	}
	return c, fi.Mode().Perm() & 0o111, nil
}

// copied lists the files below ctxDir a COPY/ADD source (maybe a glob) reads.
func (s *RecipeSources) copied(ctxDir, src string) ([]string, error) {
	pattern := filepath.Join(ctxDir, filepath.FromSlash(strings.TrimPrefix(path.Clean("/"+src), "/")))
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("%s does not exist in the build context %s", src, ctxDir)
	}
	var out []string
	for _, m := range matches {
		got, err := s.walk(m)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// mounted lists the files of a bind mount the RUN step reads (see
// RecipeSources).
func (s *RecipeSources) mounted(ctxDir string, m recipe.Mount) ([]string, error) {
	dir := filepath.Join(ctxDir, filepath.FromSlash(strings.TrimPrefix(path.Clean("/"+m.Source), "/")))
	key := dir + "\x00" + m.Command
	if got, ok := s.mounts[key]; ok {
		return got, nil
	}
	all, err := s.walk(dir)
	if err != nil {
		return nil, err
	}
	rels := make([]string, len(all))
	for i, f := range all {
		r, _ := filepath.Rel(dir, f)
		rels[i] = filepath.ToSlash(r)
	}
	named := func(text string) []int {
		var out []int
		for i, rel := range rels {
			if names(text, rel) {
				out = append(out, i)
			}
		}
		return out
	}
	chosen := map[int]bool{}
	queue := named(m.Command)
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		if chosen[i] {
			continue
		}
		chosen[i] = true
		// What a file names is the same for every RUN line of the mount.
		key := dir + "\x00" + all[i]
		refs, ok := s.refs[key]
		if !ok {
			content, _, err := s.read(all[i])
			if err != nil {
				return nil, err
			}
			refs = named(string(content))
			s.refs[key] = refs
		}
		queue = append(queue, refs...)
	}
	out := all
	if len(chosen) > 0 {
		out = nil
		for i := range all {
			if chosen[i] {
				out = append(out, all[i])
			}
		}
	}
	s.mounts[key] = out
	return out, nil
}

// walk lists the files of p (p itself if it is a file), once.
func (s *RecipeSources) walk(p string) ([]string, error) {
	if got, ok := s.walks[p]; ok {
		return got, nil
	}
	got, err := walkFiles(p)
	if err == nil {
		s.walks[p] = got
	}
	return got, err
}

// names reports whether text names the file rel of a mount: rel itself or
// one of the directories holding it.
func names(text, rel string) bool {
	for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if strings.Contains(text, p) {
			return true
		}
	}
	return false
}

// parsed holds every recipe parsed in this process, by path and content:
// the same recipe text parses to the same result.
var parsed sync.Map

func parseOnce(path string, content []byte) (*recipe.Recipe, error) {
	sum := sha256.Sum256(content)
	key := path + "\x00" + hex.EncodeToString(sum[:])
	if rc, ok := parsed.Load(key); ok {
		return rc.(*recipe.Recipe), nil
	}
	rc, err := recipe.Parse(path, content)
	if err != nil {
		return nil, err
	}
	parsed.Store(key, rc)
	return rc, nil
}

// walkFiles lists p if it is a file, or every file below it.
func walkFiles(p string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && f == p {
				return fmt.Errorf("%s does not exist", p)
			}
			return err
		}
		if !d.IsDir() {
			out = append(out, f)
		}
		return nil
	})
	return out, err
}
