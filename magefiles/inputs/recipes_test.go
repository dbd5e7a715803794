package inputs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// recipeEnv is what the scripts take from the build: every UBUNTU_VERSION
// the catalog passes.
func recipeEnv() map[string][]string {
	env := map[string][]string{}
	for _, img := range catalog.All() {
		for _, a := range img.Pins {
			if a.Name == "UBUNTU_VERSION" && !slices.Contains(env[a.Name], a.Value) {
				env[a.Name] = append(env[a.Name], a.Value)
			}
		}
	}
	return env
}

// declaredItems turns the declared inputs into what a scan of the recipes
// would find for them, by file.
func declaredItems(t *testing.T) (all []found, own []found) {
	t.Helper()
	imgs, err := All()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[found]bool{}
	for _, ii := range imgs {
		for _, in := range ii.Inputs {
			var items []found
			switch in.Kind {
			case Image:
				items = append(items, found{kind: "image", value: in.Name})
			case File:
				items = append(items, found{kind: "url", value: in.Name, file: in.Where})
				if in.Checksum != "" {
					algo, sum, _ := strings.Cut(in.Checksum, ":")
					items = append(items, found{kind: algo, value: sum, file: in.Where})
				}
			case Git:
				items = append(items, found{kind: "git", value: in.Name + "@" + in.Version, file: in.Where},
					found{kind: "url", value: in.Name, file: in.Where})
			case Pip:
				items = append(items, found{kind: "pip", value: in.Name + in.Version, file: in.Where})
			case Apt:
				items = append(items, found{kind: "apt", value: in.Name, file: in.Where})
				if in.Source == GoogleCloud {
					items = append(items, found{kind: "url", value: in.Source, file: in.Where})
				}
			}
			for _, it := range items {
				if seen[it] {
					continue
				}
				seen[it] = true
				all = append(all, it)
				if !strings.HasPrefix(in.Where, "catalog ") && it.kind != "image" {
					own = append(own, it)
				}
			}
		}
	}
	return all, own
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "dockerfile_scripts")); err != nil {
		t.Fatal(err)
	}
	return root
}

// driftProblems compares a scan of the recipes with the declarations: what
// the recipes name and nothing declares, and what is declared for a file
// that no longer names it.
func driftProblems(scanned, all, own []found) (undeclared, stale []found) {
	declared := map[found]bool{}
	for _, d := range all {
		declared[d] = true
		declared[found{kind: d.kind, value: d.value}] = true // images: any file
	}
	for _, s := range scanned {
		key := s
		if s.kind == "image" {
			key.file = ""
		}
		if !declared[key] {
			undeclared = append(undeclared, s)
		}
	}
	have := map[found]bool{}
	for _, s := range scanned {
		have[s] = true
	}
	for _, d := range own {
		if !have[d] {
			stale = append(stale, d)
		}
	}
	return undeclared, stale
}

// TestRecipesDeclareEveryInput is the drift test: every URL, checksum, git
// ref, pip pin and apt package the recipes name is declared (recipes.go or
// the catalog), and every declaration still appears in the recipe it names.
func TestRecipesDeclareEveryInput(t *testing.T) {
	scanned, err := scanRecipes(repoRoot(t), recipeEnv())
	if err != nil {
		t.Fatal(err)
	}
	all, own := declaredItems(t)
	undeclared, stale := driftProblems(scanned, all, own)
	for _, u := range undeclared {
		t.Errorf("%s names %s %s, which magefiles/inputs does not declare: add it to magefiles/inputs/recipes.go (or the catalog)", u.file, u.kind, u.value)
	}
	for _, s := range stale {
		t.Errorf("magefiles/inputs declares %s %s from %s, which no longer names it: update magefiles/inputs/recipes.go", s.kind, s.value, s.file)
	}
	kinds := map[string]int{}
	for _, s := range scanned {
		kinds[s.kind]++
	}
	for _, k := range []string{"url", "sha256", "git", "pip", "apt", "image"} { // md5: only if a recipe uses one
		if kinds[k] == 0 {
			t.Errorf("the scan found no %s in the recipes: the scanner is broken", k)
		}
	}
}

// TestDriftTestFailsOnChangedRecipe proves the drift test can fail: a copy
// of the recipes with a bumped version, a new package, a new checksum and a
// new pin yields undeclared inputs, and a removed download a stale one.
func TestDriftTestFailsOnChangedRecipe(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	for _, dir := range []string{"dockerfile_scripts"} {
		if err := os.MkdirAll(filepath.Join(tmp, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(root, "dockerfile_scripts", "*"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "Dockerfile.cpu"), filepath.Join(root, "Dockerfile.gpu"))
	edits := map[string][][2]string{
		"install_libfabric.sh":        {{"LIBFABRIC_VERSION=1.15.1", "LIBFABRIC_VERSION=1.99.0"}},
		"install_deb_packages.sh":     {{"    wget\n", "    wget\n    zstd\n"}},
		"install_horovod.sh":          {{"cmake==3.22.4", "cmake==3.99.0"}},
		"additional-requirements.txt": {{"petname\n", "petname\nnewthing==1.0\n"}},
		"install_gdrcopy_extra.sh":    nil,
	}
	removeGdrcopy := "install_nccl.sh"
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.IsDir() {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, e := range edits[filepath.Base(f)] {
			if !strings.Contains(text, e[0]) {
				t.Fatalf("%s no longer contains %q: update this test's edit", f, e[0])
			}
			text = strings.Replace(text, e[0], e[1], 1)
		}
		if filepath.Base(f) == removeGdrcopy {
			var keep []string
			for _, line := range strings.Split(text, "\n") {
				if !strings.Contains(line, "gdrcopy/archive") {
					keep = append(keep, line)
				}
			}
			text = strings.Join(keep, "\n")
		}
		rel, _ := filepath.Rel(root, f)
		if err := os.WriteFile(filepath.Join(tmp, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	scanned, err := scanRecipes(tmp, recipeEnv())
	if err != nil {
		t.Fatal(err)
	}
	all, own := declaredItems(t)
	undeclared, stale := driftProblems(scanned, all, own)
	var got []string
	for _, u := range undeclared {
		got = append(got, u.kind+" "+u.value)
	}
	for _, want := range []string{
		"url https://github.com/ofiwg/libfabric/releases/download/v1.99.0/libfabric-1.99.0.tar.bz2",
		"apt zstd", "pip cmake==3.99.0", "pip newthing==1.0",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("undeclared %q not reported; got %q", want, got)
		}
	}
	var gone []string
	for _, s := range stale {
		gone = append(gone, s.kind+" "+s.value)
	}
	for _, want := range []string{"url " + gdrcopyURL, "url " + libfabric, "pip cmake==3.22.4"} {
		if !slices.Contains(gone, want) {
			t.Errorf("stale %q not reported; got %q", want, gone)
		}
	}
}

// TestExpand covers the shell expansions the scripts use in URLs.
func TestExpand(t *testing.T) {
	vars := map[string][]string{"V": {"4.1.0"}, "U": {"ubuntu18.04", "ubuntu20.04"}, "u": {"${U:?U is required (e.g. x)}"}}
	got, err := expand("https://x/v${V%.*}/a-${V}-${u}-$V.tgz", vars, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://x/v4.1/a-4.1.0-ubuntu18.04-4.1.0.tgz", "https://x/v4.1/a-4.1.0-ubuntu20.04-4.1.0.tgz"}
	if !slices.Equal(got, want) {
		t.Errorf("expand = %q, want %q", got, want)
	}
	if _, err := expand("https://x/${NOPE}", vars, 0); err == nil || !strings.Contains(err.Error(), "$NOPE is not set") {
		t.Errorf("unset variable: err = %v", err)
	}
}
