package ci

import (
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/variant"
)

func TestConfigPublishesEveryMatrixVariantInBothModes(t *testing.T) {
	cfg := Config()
	for _, c := range variant.Matrix() {
		for _, mode := range []string{"release", "development"} {
			if !strings.Contains(cfg, "name: publish-"+mode+"-"+c.Name+"\n") {
				t.Errorf("no %s job for %s", mode, c.Name)
			}
		}
		want := c.Name + ") true ;;"
		if w := c.Words(); len(w) > 0 {
			want = c.Name + ") export " + strings.Join(w, " ") + " ;;"
		}
		if !strings.Contains(cfg, want) {
			t.Errorf("config does not set %q", want)
		}
	}
	if strings.Count(cfg, "- publish:\n          name:") != 2*len(variant.Matrix()) {
		t.Error("unexpected number of publish jobs")
	}
	for _, want := range []string{"go run magefile.go -v publish", "export NGC_PUBLISH= REGISTRY_REPO=environments-dev", "only: main", "ignore: main"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q", want)
		}
	}
}

func TestMatrixLines(t *testing.T) {
	got := strings.Join(MatrixLines(), "\n")
	want := "default\nmpi WITH_MPI=1\nmpi-ofi WITH_MPI=1 WITH_OFI=1 WITH_NCCL=1"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
