package build

import (
	"slices"
	"testing"
)

func TestChangedFiles(t *testing.T) {
	// Output() trims, eating the first line's leading blank.
	got := changedFiles("M Dockerfile.cpu\n M magefiles/x.go\n?? new file.txt\nR  a -> b\n")
	want := []string{"Dockerfile.cpu", "magefiles/x.go", "new file.txt", "a -> b"}
	if !slices.Equal(got, want) {
		t.Errorf("%q", got)
	}
	if changedFiles("") != nil {
		t.Error("clean tree has changes")
	}
}
