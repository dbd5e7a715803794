package plan

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"fmt"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func flagValues(argv []string, flag string) []string {
	var out []string
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag {
			out = append(out, argv[i+1])
		}
	}
	return out
}

// TestOnlyTheImageBuildingTheAWSPluginGetsItsSecrets: the secrets that
// locate the plugin's internal source go to tf2-gpu whenever it builds the
// plugin (WITH_OFI=1 WITH_NCCL=1, traced or not), and nowhere else.
func TestOnlyTheImageBuildingTheAWSPluginGetsItsSecrets(t *testing.T) {
	secrets := []string{"id=INTERNAL_AWS_DS,env=INTERNAL_AWS_DS", "id=INTERNAL_AWS_PATH,env=INTERNAL_AWS_PATH"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want map[string][]string // image -> --secret values
	}{
		{"traced", map[string]string{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1", "WITH_AWS_TRACE": "1"}, map[string][]string{"tf2-gpu": secrets}},
		{"plugin", map[string]string{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1"}, map[string][]string{"tf2-gpu": secrets}},
		{"no plugin", map[string]string{"WITH_MPI": "1", "WITH_NCCL": "1"}, map[string][]string{}},
	} {
		specs, err := Plan(settings(t, tc.env), Request{Images: []string{"tf2-gpu", "pt-gpu", "tf2-cpu"}, Mode: Publish})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, sp := range specs {
			if v := flagValues(argv(sp), "--secret"); v != nil {
				got[sp.Image.Name] = v
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: secrets %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMetadataFilesOnlyWhenAskedFor(t *testing.T) {
	s := settings(t, nil)
	specs, err := Plan(s, Request{Images: []string{"pt-cpu"}, Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if sp.MetadataFile != "" || slices.Contains(argv(sp), "--metadata-file") {
			t.Errorf("%s: metadata file %q without a MetadataDir", sp.Image.Name, sp.MetadataFile)
		}
	}
	dir := t.TempDir()
	specs, err = Plan(s, Request{Images: []string{"pt-cpu"}, Mode: Publish, MetadataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		want := filepath.Join(dir, sp.Image.Name+".json")
		if got := flagValues(argv(sp), "--metadata-file"); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("%s: --metadata-file %v, want %s", sp.Image.Name, got, want)
		}
	}
}

// A publish build pushes the hashed tag only; the publisher points the
// other tags at the pushed digest afterwards. Other builds tag everything.
func TestPublishBuildsTheHashedTagAndTagsTheRestAfter(t *testing.T) {
	s := settings(t, nil)
	specs, err := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		all := sp.Tags.List()
		if sp.Tags.Hashed == "" || len(all) < 2 {
			t.Fatalf("%s: tags %v: the test needs a hashed tag and another", sp.Image.Name, all)
		}
		if got := flagValues(argv(sp), "--tag"); !reflect.DeepEqual(got, []string{sp.Tags.Hashed}) {
			t.Errorf("%s: publish build tags %v, want only %s", sp.Image.Name, got, sp.Tags.Hashed)
		}
		after := sp.TagsAfterPush()
		if len(after) != len(all)-1 || slices.Contains(after, sp.Tags.Hashed) {
			t.Errorf("%s: tags after push %v, want every tag of %v but the hashed one", sp.Image.Name, after, all)
		}
		for _, tag := range after {
			if !slices.Contains(all, tag) {
				t.Errorf("%s: tag after push %s is not one of its tags", sp.Image.Name, tag)
			}
		}
	}
	specs, err = Plan(settings(t, map[string]string{"PUSH": "1"}), Request{Images: []string{"tf2-cpu"}, Mode: Build})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if got := flagValues(argv(sp), "--tag"); !reflect.DeepEqual(got, sp.Tags.List()) || sp.TagsAfterPush() != nil {
			t.Errorf("%s: PUSH=1 build tags %v and after-push %v, want every tag %v in the build", sp.Image.Name, got, sp.TagsAfterPush(), sp.Tags.List())
		}
	}
}

// A local build of a derived image builds its base stage first in the same
// build: FRAMEWORK_BASE=base, then the base's arguments, then the image's
// own that the base does not set, each once.
func TestEveryLocalBuildFoldsItsBaseArguments(t *testing.T) {
	s := settings(t, nil)
	for _, img := range catalog.All() {
		if img.Base == "" || !slices.Contains(Platforms(img, s), s.Platform) {
			continue
		}
		specs, err := Plan(s, Request{Images: []string{img.Name}, Mode: Build})
		if err != nil {
			t.Fatal(err)
		}
		sp := specs[len(specs)-1]
		base, err := catalog.Lookup(img.Base)
		if err != nil {
			t.Fatal(err)
		}
		baseArgs, err := BuildArgs(base, s)
		if err != nil {
			t.Fatal(err)
		}
		own, err := BuildArgs(img, s)
		if err != nil {
			t.Fatal(err)
		}
		want := []catalog.Arg{{Name: "FRAMEWORK_BASE", Value: "base"}}
		seen := map[string]bool{"FRAMEWORK_BASE": true}
		for _, a := range append(baseArgs, own...) {
			if !seen[a.Name] {
				want, seen[a.Name] = append(want, a), true
			}
		}
		if !reflect.DeepEqual(sp.BuildArgs, want) {
			t.Errorf("%s: local build arguments\n%v\nwant\n%v", img.Name, sp.BuildArgs, want)
		}
	}
}

// BuildArgs keeps every pin of an image, however many it has, in order.
func TestBuildArgsKeepsEveryPin(t *testing.T) {
	img, err := catalog.Lookup("cpu-py-38-base")
	if err != nil {
		t.Fatal(err)
	}
	img.Pins = nil
	for i := 0; i < 40; i++ {
		img.Pins = append(img.Pins, catalog.Arg{Name: fmt.Sprintf("PIN_%02d", i), Value: fmt.Sprint(i)})
	}
	args, err := BuildArgs(img, settings(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	var pins []catalog.Arg
	for _, a := range args {
		if strings.HasPrefix(a.Name, "PIN_") {
			pins = append(pins, a)
		}
	}
	if !reflect.DeepEqual(pins, img.Pins) {
		t.Errorf("pins in the build arguments\n%v\nwant\n%v", pins, img.Pins)
	}
}

func TestValidTagTakesEveryLetterAndDigit(t *testing.T) {
	for _, tag := range []string{"az", "AZ", "z", "Z", "09", "a_b.c-d", "cuda-11.3-pytorch-1.12-tf-2.11-gpu-Zz9"} {
		if !validTag(tag) {
			t.Errorf("validTag(%q) = false", tag)
		}
	}
	for _, tag := range []string{"", ".a", "-a", "a b", "a/b", "a:b", "a{", "a`", "a@", "a[", strings.Repeat("a", 129)} {
		if validTag(tag) {
			t.Errorf("validTag(%q) = true", tag)
		}
	}
}
