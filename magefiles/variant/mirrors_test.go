package variant

import (
	"strings"
	"testing"
)

func TestRegistryMirrors(t *testing.T) {
	s, err := Parse(MapLookup(map[string]string{"REGISTRY_MIRRORS": "docker.io=127.0.0.1:5000, nvcr.io=mirror.example"}), "0.26.4", "abc1234")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Mirrors) != 2 || s.Mirrors["docker.io"] != "127.0.0.1:5000" || s.Mirrors["nvcr.io"] != "mirror.example" {
		t.Errorf("mirrors %v", s.Mirrors)
	}
	if got := describeMirrors(s.Mirrors); got != "docker.io=127.0.0.1:5000,nvcr.io=mirror.example" {
		t.Errorf("described as %q", got)
	}
	for _, bad := range []string{"docker.io", "docker.io=", "=m:5000", "docker.io=http://m:5000", "docker.io=m:5000/path"} {
		_, err := Parse(MapLookup(map[string]string{"REGISTRY_MIRRORS": bad}), "0.26.4", "abc1234")
		if err == nil || !strings.Contains(err.Error(), "REGISTRY_MIRRORS=") {
			t.Errorf("REGISTRY_MIRRORS=%q: %v, want an error naming it", bad, err)
		}
	}
}
