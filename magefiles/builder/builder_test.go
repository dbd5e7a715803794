package builder

import (
	"slices"
	"testing"
)

func TestPlatformsOfAMultiNodeBuilder(t *testing.T) {
	// `docker buildx inspect` of a kubernetes builder with an amd64 and an
	// arm64 node: every node's platforms count, variants and the '*' of
	// user-set platforms are folded.
	out := `Name:          k8s
Driver:        kubernetes
Last Activity: 2026-11-27 04:00:00 +0000 UTC

Nodes:
Name:      k8s-amd64
Endpoint:  kubernetes:///k8s?deployment=amd&kubeconfig=
Status:    running
Platforms: linux/amd64*, linux/amd64/v2, linux/amd64/v3, linux/386

Name:      k8s-arm64
Endpoint:  kubernetes:///k8s?deployment=arm&kubeconfig=
Status:    running
Platforms: linux/arm64*, linux/arm/v7, linux/arm/v6
`
	got := Platforms(out)
	want := []string{"linux/amd64", "linux/386", "linux/arm64", "linux/arm"}
	if !slices.Equal(got, want) {
		t.Errorf("platforms %v, want %v", got, want)
	}
	if m := Missing(got, []string{"linux/amd64", "linux/arm64", "linux/s390x"}); !slices.Equal(m, []string{"linux/s390x"}) {
		t.Errorf("missing %v", m)
	}
	if len(Platforms("Name: x\nStatus: inactive\n")) != 0 {
		t.Error("platforms found in output without any")
	}
}

func TestVersions(t *testing.T) {
	cases := []struct {
		in   string
		want [3]int
		old  bool
	}{
		{"Docker version 28.2.2, build e6534b4", [3]int{28, 2, 2}, false},
		{"v0.38.2", [3]int{0, 38, 2}, false},
		{"v0.15.0", [3]int{0, 15, 0}, false},
		{"v0.14.9-desktop.1", [3]int{0, 14, 9}, true},
		{"0.9", [3]int{0, 9, 0}, true},
	}
	for _, c := range cases {
		v, ok := ParseVersion(c.in)
		if !ok || v != c.want {
			t.Errorf("ParseVersion(%q) = %v %v, want %v", c.in, v, ok, c.want)
		}
		if older(v, MinBuildx) != c.old && c.in[0] != 'D' {
			t.Errorf("%q older than %v: %v", c.in, MinBuildx, !c.old)
		}
	}
	if _, ok := ParseVersion("dev"); ok {
		t.Error("a version parsed from 'dev'")
	}
}
