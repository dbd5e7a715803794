package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/recipe"
)

// standInRecipes is the directory of the stand-in recipes the e2e scenarios
// build (RECIPES_DIR of every scenario's repository).
const standInRecipes = "testdata/recipes"

// repoRoot is the checkout holding the real recipes (magefiles/e2e/../..).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

func parseRecipe(t *testing.T, path string) (*recipe.Recipe, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recipe.Parse(path, b)
	if err != nil {
		t.Fatal(err)
	}
	return r, string(b)
}

// TestStandInRecipesMatchRealOnes keeps the stand-in recipes in step with the
// real ones: the same named stages, and for each stage the same set of ARGs
// it can see (globals plus its own, and with FRAMEWORK_BASE=base the base
// stage's too), so the e2e suite passes exactly the arguments the real
// recipes declare.
func TestStandInRecipesMatchRealOnes(t *testing.T) {
	root := repoRoot(t)
	for _, file := range []string{catalog.RecipeCPU, catalog.RecipeGPU} {
		t.Run(file, func(t *testing.T) {
			real, realText := parseRecipe(t, filepath.Join(root, file))
			stand, standText := parseRecipe(t, filepath.Join(standInRecipes, file))
			diffs, err := recipe.Differences(real, stand)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				t.Errorf("%s; update %s", d, filepath.Join(standInRecipes, file))
			}
			for name, text := range map[string]string{"real": realText, "stand-in": standText} {
				if !strings.Contains(text, "FROM ${FRAMEWORK_BASE} AS framework") {
					t.Errorf("%s %s: the framework stage does not start FROM ${FRAMEWORK_BASE}", name, file)
				}
			}
			if strings.Contains(strings.ToLower(standText), "# syntax=") {
				t.Errorf("stand-in %s has a # syntax= line: the stack has no network to fetch a frontend image", file)
			}
		})
	}
}

// TestStandInRecipesCoverTheCatalog checks every catalog image's stage exists
// in the stand-in recipes and accepts the image's build arguments.
func TestStandInRecipesCoverTheCatalog(t *testing.T) {
	parsed := map[string]*recipe.Recipe{}
	for _, img := range catalog.All() {
		r, ok := parsed[img.Recipe]
		if !ok {
			r, _ = parseRecipe(t, filepath.Join(standInRecipes, img.Recipe))
			parsed[img.Recipe] = r
		}
		args := map[string]string{"BASE_IMAGE": "x"}
		for _, a := range img.Pins {
			args[a.Name] = a.Value
		}
		if err := r.CheckArgs(img.Name, img.Stage, args); err != nil {
			t.Error(err)
		}
	}
}
