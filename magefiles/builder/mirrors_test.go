package builder

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestBuildkitdConfigMapsEachRegistryToItsMirror(t *testing.T) {
	got := BuildkitdConfig(map[string]string{"docker.io": "mirror.example:5000", "nvcr.io": "ngc-mirror.example", "ghcr.io": "10.0.0.9:5000"})
	want := `[registry."docker.io"]
  mirrors = ["mirror.example:5000"]

[registry."ghcr.io"]
  mirrors = ["10.0.0.9:5000"]

[registry."nvcr.io"]
  mirrors = ["ngc-mirror.example"]
`
	if got != want {
		t.Errorf("config\n%s\nwant\n%s", got, want)
	}
	if got := BuildkitdConfig(nil); got != "" {
		t.Errorf("config without mirrors: %q", got)
	}
	// TOML basic strings: quotes and backslashes escaped, control
	// characters as \uXXXX (Go's %q would write \x01, which TOML refuses).
	if got, want := tomlString("a\"b\\c\x01d\te"), `"a\"b\\c\u0001d\u0009e"`; got != want {
		t.Errorf("tomlString = %s, want %s", got, want)
	}
	// The edges: 0x1F and DEL escaped, a space and printable text not.
	if got, want := tomlString("a b\x1f\x7f~"), `"a b\u001F\u007F~"`; got != want {
		t.Errorf("tomlString = %s, want %s", got, want)
	}
	// An empty literal string is a string; a lone quote is none.
	if got, ok := tomlUnquote("''"); got != "" || !ok {
		t.Errorf("tomlUnquote('') = %q, %v; want \"\", true", got, ok)
	}
	if _, ok := tomlUnquote("'"); ok {
		t.Error("tomlUnquote(') accepted")
	}
}

func TestCreateArgsWithAndWithoutMirrors(t *testing.T) {
	got := CreateArgs("determined-environments", "")
	want := []string{"docker", "buildx", "create", "--name", "determined-environments", "--driver", "docker-container", "--bootstrap"}
	if !slices.Equal(got, want) {
		t.Errorf("without mirrors %q, want %q", got, want)
	}
	got = CreateArgs("determined-environments", "/tmp/x/buildkitd.toml")
	want = []string{"docker", "buildx", "create", "--name", "determined-environments", "--driver", "docker-container",
		"--buildkitd-config", "/tmp/x/buildkitd.toml", "--bootstrap"}
	if !slices.Equal(got, want) {
		t.Errorf("with mirrors %q, want %q", got, want)
	}
}

// inspectWithConfig is `docker buildx inspect` of a docker-container
// builder created with BuildkitdConfig of two registries, as buildx v0.38.2
// prints it: it re-encodes the file (no indentation, 'literal' strings, a
// bare [registry] first) and its tabwriter turns "\t> line" into " > line".
// Captured from the real buildx against a stand-in Docker API.
const inspectWithConfig = `Name:          determined-environments
Driver:        docker-container
Last Activity: 2026-12-02 16:02:04 +0000 UTC

Nodes:
Name:                  determined-environments0
Endpoint:              unix:///var/run/docker.sock
Status:                inactive
BuildKit daemon flags: --allow-insecure-entitlement=network.host
File#buildkitd.toml:
 > [registry]
 > [registry.'docker.io']
 > mirrors = ['mirror.example:5000']
 > 
 > [registry.'nvcr.io']
 > mirrors = ['a.example', 'b.example:443']
 > 
`

func TestConfiguredMirrorsReadsTheInspectedConfig(t *testing.T) {
	got := ConfiguredMirrors(inspectWithConfig)
	if len(got) != 2 || !slices.Equal(got["docker.io"], []string{"mirror.example:5000"}) || !slices.Equal(got["nvcr.io"], []string{"a.example", "b.example:443"}) {
		t.Errorf("mirrors %v", got)
	}
	// Our own config, as given (the stand-in docker prints it so), reads
	// back as the mirrors it was made of.
	var b strings.Builder
	b.WriteString("Name: x\nDriver: docker-container\nFile#buildkitd.toml:\n")
	for _, l := range strings.Split(BuildkitdConfig(map[string]string{"docker.io": "m:5000", "quay.io": "q.example"}), "\n") {
		b.WriteString(" > " + l + "\n")
	}
	if got := ConfiguredMirrors(b.String()); len(got) != 2 || got["docker.io"][0] != "m:5000" || got["quay.io"][0] != "q.example" {
		t.Errorf("round trip: %v", got)
	}
	// A builder created without a config file has none.
	if got := ConfiguredMirrors("Name: x\nDriver: docker-container\nPlatforms: linux/amd64\n"); len(got) != 0 {
		t.Errorf("no file: %v", got)
	}
}

func TestMirrorsWarningNamesTheMissingMirrorAndTheFix(t *testing.T) {
	want := map[string]string{"docker.io": "mirror.example:5000"}
	with := Info{Driver: DefaultDriver, Mirrors: ConfiguredMirrors(inspectWithConfig)}
	if w := MirrorsWarning("determined-environments", false, with, want); w != "" {
		t.Errorf("a builder with the mirror is warned about: %s", w)
	}
	without := Info{Driver: DefaultDriver}
	w := MirrorsWarning("determined-environments", false, without, want)
	for _, s := range []string{"builder determined-environments was created without the registry mirror docker.io=mirror.example:5000 of REGISTRY_MIRRORS",
		"`docker buildx rm determined-environments && mage builder`"} {
		if !strings.Contains(w, s) {
			t.Errorf("warning %q lacks %q", w, s)
		}
	}
	if strings.Contains(w, "\n") {
		t.Errorf("warning is not one line: %q", w)
	}
	if w := MirrorsWarning("determined-environments", false, with, map[string]string{"docker.io": "other.example"}); !strings.Contains(w, "docker.io=other.example") {
		t.Errorf("a different mirror is not warned about: %q", w)
	}
	for name, c := range map[string]struct {
		explicit bool
		info     Info
		want     map[string]string
	}{
		"no REGISTRY_MIRRORS": {false, without, nil},
		"BUILDX_BUILDER":      {true, without, want},
		"remote driver":       {false, Info{Driver: "remote"}, want},
	} {
		if w := MirrorsWarning("b", c.explicit, c.info, c.want); w != "" {
			t.Errorf("%s: warned %q", name, w)
		}
	}
}

// Ensure creates the default builder with a buildkitd.toml of the mirrors,
// which the stand-in buildx copies at create time as buildx does and
// prints back on inspect; the temporary file is gone afterwards.
func TestEnsureCreatesTheBuilderWithTheMirrors(t *testing.T) {
	s := newStandIn(t)
	mirrors := map[string]string{"docker.io": "mirror.example:5000"}
	info, err := Ensure(context.Background(), quiet(), "determined-environments", false, mirrors)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Mirrors["docker.io"], []string{"mirror.example:5000"}) {
		t.Errorf("created builder's mirrors %v", info.Mirrors)
	}
	calls := s.calls(t)
	m := regexp.MustCompile(`(?m)^buildx create --name determined-environments --driver docker-container --buildkitd-config (\S+/buildkitd\.toml) --bootstrap$`).FindStringSubmatch(calls)
	if m == nil {
		t.Fatalf("calls\n%s\nlack a create with --buildkitd-config", calls)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the temporary config %s is left behind (%v)", m[1], err)
	}
	if w := MirrorsWarning("determined-environments", false, info, mirrors); w != "" {
		t.Errorf("warning after creating with the mirrors: %s", w)
	}

	// An existing builder is not recreated; it lacks the mirrors and the
	// warning says so.
	s = newStandIn(t)
	if _, err := Ensure(context.Background(), quiet(), "determined-environments", false, nil); err != nil {
		t.Fatal(err)
	}
	info, err = Ensure(context.Background(), quiet(), "determined-environments", false, mirrors)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(s.calls(t), "buildx create"); n != 1 {
		t.Errorf("%d creates, want 1:\n%s", n, s.calls(t))
	}
	if w := MirrorsWarning("determined-environments", false, info, mirrors); !strings.Contains(w, "docker buildx rm determined-environments") {
		t.Errorf("no warning about the existing builder: %q", w)
	}
}
