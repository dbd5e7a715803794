package catalog

import (
	"errors"
	"slices"
	"testing"
)

func TestCatalogIsConsistent(t *testing.T) {
	all := All()
	if len(all) != 17 {
		t.Fatalf("%d images, want the 17 of the old Makefile", len(all))
	}
	pos := map[string]int{}
	for i, img := range all {
		if _, dup := pos[img.Name]; dup {
			t.Errorf("%s twice", img.Name)
		}
		pos[img.Name] = i
		switch {
		case img.Base != "":
			b, err := Lookup(img.Base)
			if err != nil || !b.IsBase() || b.Recipe != img.Recipe || b.Accel != img.Accel {
				t.Errorf("%s: base %s is not a base of the same recipe (%v)", img.Name, img.Base, err)
			}
			if pos[img.Base] >= i {
				t.Errorf("%s is listed before its base %s", img.Name, img.Base)
			}
			if img.From != "" {
				t.Errorf("%s has both a base and a FROM image", img.Name)
			}
		case img.From == "":
			t.Errorf("%s has neither a base nor a FROM image", img.Name)
		}
		if img.MultiArch && img.Accel != CPU {
			t.Errorf("%s: only CPU images are multi-platform", img.Name)
		}
		if img.NGC && img.IsBase() {
			t.Errorf("base image %s must not go to NGC", img.Name)
		}
	}
}

func TestLookupCopiesAndSuggests(t *testing.T) {
	a, _ := Lookup("tf2-cpu")
	a.Pins[0].Value = "changed"
	if b, _ := Lookup("tf2-cpu"); b.Pins[0].Value == "changed" {
		t.Error("Lookup shares the catalog's pins")
	}
	_, err := Lookup("deepspeed")
	var ue *UnknownImageError
	if !errors.As(err, &ue) || !slices.Contains(ue.Suggestions, "deepspeed-gpu") {
		t.Errorf("error %v", err)
	}
	_, err = Lookup("zzzzzzzzzzzzzzzzzzzzzzzz")
	if !errors.As(err, &ue) || len(ue.Suggestions) != 0 {
		t.Errorf("far-off name got suggestions: %v", err)
	}
}
