package variant

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestPlatformDefaultsToTheHost(t *testing.T) {
	for _, env := range []map[string]string{nil, {"PLATFORM": ""}, {"PLATFORM": "  "}} {
		s, err := parse(env)
		if err != nil {
			t.Fatal(err)
		}
		if want := "linux/" + runtime.GOARCH; s.Platform != want || s.PlatformExplicit {
			t.Errorf("%v: Platform=%q explicit=%v, want %q not explicit", env, s.Platform, s.PlatformExplicit, want)
		}
	}
}

func TestPlatformTakesEveryCatalogPlatform(t *testing.T) {
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		s, err := parse(map[string]string{"PLATFORM": p})
		if err != nil {
			t.Fatalf("PLATFORM=%s: %v", p, err)
		}
		if s.Platform != p || !s.PlatformExplicit {
			t.Errorf("PLATFORM=%s: got %q explicit=%v", p, s.Platform, s.PlatformExplicit)
		}
		if !slices.Contains(s.Describe(), "PLATFORM="+p) {
			t.Errorf("Describe lacks PLATFORM=%s: %v", p, s.Describe())
		}
	}
}

func TestBadPlatformNamesTheValueAndTheValidOnes(t *testing.T) {
	for _, v := range []string{"arm64", "linux/arm", "linux/arm64/v8", "Linux/AMD64", "linux/amd64,linux/arm64", "darwin/arm64"} {
		_, err := parse(map[string]string{"PLATFORM": v})
		if err == nil {
			t.Errorf("PLATFORM=%q accepted", v)
			continue
		}
		for _, want := range []string{`PLATFORM="` + v + `"`, "linux/amd64, linux/arm64"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("PLATFORM=%q: error %q does not say %q", v, err, want)
			}
		}
	}
}
