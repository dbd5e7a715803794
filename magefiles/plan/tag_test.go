package plan

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// validTag replaces name.NewTag in the planner's hot path: it must refuse
// every tag go-containerregistry refuses, and accept every tag the
// distribution spec accepts ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}); it also
// refuses a leading . or -, which go-containerregistry lets through and
// registries refuse.
func TestValidTagAgreesWithGoContainerregistry(t *testing.T) {
	tags := map[string]bool{
		"py-3.8-pytorch-1.12-tf-2.11-cpu-0.19.10": true, "cuda-11.3-base-gpu-abc1234": true, "A_b.c-D": true,
		"_x": true, "x": true, strings.Repeat("a", 128): true, "1.0.0-rc1": true,
		strings.Repeat("a", 129): false, "": false, ".x": false, "-x": false,
		"a+b": false, "a b": false, "a/b": false, "a:b": false, "a@b": false, "ä": false, "tag\n": false,
	}
	for tag, want := range tags {
		_, err := name.NewTag("example.com/repo:"+tag, name.StrictValidation)
		if got := validTag(tag); got != want {
			t.Errorf("validTag(%q) = %v, want %v", tag, got, want)
		}
		if want && err != nil {
			t.Errorf("go-containerregistry refuses %q (%v), which validTag accepts", tag, err)
		}
	}
}

func TestTagsInRefusesBadReferences(t *testing.T) {
	s, err := variant.Parse(variant.MapLookup(map[string]string{}), "0.1.0", "abc1234")
	if err != nil {
		t.Fatal(err)
	}
	img := catalog.All()[0]
	if _, err := tagsIn("example.com/Upper/repo", img, s); err == nil || !strings.Contains(err.Error(), "example.com/Upper/repo") {
		t.Errorf("an upper-case repository: err = %v, want an error naming it", err)
	}
	s.Version = "1.0+build"
	if _, err := tagsIn("example.com/repo", img, s); err == nil || !strings.Contains(err.Error(), "1.0+build") {
		t.Errorf("a version with +: err = %v, want an error naming the tag", err)
	}
	s.Version = "0.1.0"
	got, err := tagsIn("example.com/repo", img, s)
	if err != nil {
		t.Fatal(err)
	}
	if want := "example.com/repo:" + TagName(img, s) + "-abc1234"; got.Hashed != want {
		t.Errorf("hashed tag %q, want %q", got.Hashed, want)
	}
}
