package builder

import (
	"slices"
	"testing"
)

// The platforms a builder lacks are named once each, although the images
// of a publish want linux/arm64 once per image.
func TestMissingNamesEachPlatformOnce(t *testing.T) {
	got := Missing([]string{"linux/amd64"}, []string{"linux/amd64", "linux/arm64", "linux/amd64", "linux/arm64", "linux/arm64", "linux/s390x"})
	if want := []string{"linux/arm64", "linux/s390x"}; !slices.Equal(got, want) {
		t.Errorf("Missing = %v, want %v", got, want)
	}
	if got := Missing([]string{"linux/amd64", "linux/arm64"}, []string{"linux/arm64", "linux/amd64"}); len(got) != 0 {
		t.Errorf("Missing = %v, want none", got)
	}
}
