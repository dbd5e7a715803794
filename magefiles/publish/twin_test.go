package publish

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/plan"
)

// pushTo writes idx under refs and returns its digest.
func pushTo(t *testing.T, idx v1.ImageIndex, refs ...string) string {
	t.Helper()
	for _, r := range refs {
		ref, err := name.ParseReference(r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatal(err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// concurrentTwin accepts a verification failure only when every tag that
// does not hold this run's digest holds a twin (same inputs label, same
// platforms, readable) and this run's digest reads back completely; any
// other content, a missing tag, unknown inputs, an own digest the registry
// lacks or a failing look-up is a real failure.
func TestATwinIsOnlyAnImageOfTheSameInputsAndPlatforms(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// other is what the other tags hold (nil: nothing); own says
		// whether this run's digest is in the registry.
		other  func(sp plan.Spec) (v1.ImageIndex, error)
		own    bool
		inputs func(sp plan.Spec) string
		reg    func(h *harness) Registry
		want   bool
	}{
		{name: "a twin", other: func(sp plan.Spec) (v1.ImageIndex, error) { return standInIndex(sp, sp.Platforms, nil, false) }, own: true, want: true},
		{name: "no twin: this run's digest everywhere", own: true},
		{name: "other inputs", other: func(sp plan.Spec) (v1.ImageIndex, error) {
			return randomIndex(sp.Platforms, map[string]string{plan.InputsLabel: "sha256:other"})
		}, own: true},
		{name: "other platforms", other: func(sp plan.Spec) (v1.ImageIndex, error) {
			return standInIndex(sp, []string{"linux/arm64"}, nil, false)
		}, own: true},
		{name: "unknown inputs", other: func(sp plan.Spec) (v1.ImageIndex, error) { return standInIndex(sp, sp.Platforms, nil, false) },
			own: true, inputs: func(plan.Spec) string { return "" }},
		{name: "own digest missing", other: func(sp plan.Spec) (v1.ImageIndex, error) { return standInIndex(sp, sp.Platforms, nil, false) }},
		{name: "look-up fails", other: func(sp plan.Spec) (v1.ImageIndex, error) { return standInIndex(sp, sp.Platforms, nil, false) },
			own: true, reg: func(h *harness) Registry { return lookupFails{h.client()} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			e, sp := baseSpec(t, h)
			mine, err := standInIndex(sp, sp.Platforms, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			digest, err := mine.Digest()
			if err != nil {
				t.Fatal(err)
			}
			tags := sp.Tags.List()
			if tc.own {
				pushTo(t, mine, tags...)
			}
			if tc.other != nil {
				other, err := tc.other(sp)
				if err != nil {
					t.Fatal(err)
				}
				pushTo(t, other, tags[1:]...) // the hashed tag keeps this run's
			}
			var reg Registry = h.client()
			if tc.reg != nil {
				reg = tc.reg(h)
			}
			inputs := sp.InputsDigest
			if tc.inputs != nil {
				inputs = tc.inputs(sp)
			}
			p := &publisher{e: e, reg: reg}
			got := p.concurrentTwin(ctx, sp, inputs, digest.String())
			warned := strings.Contains(h.err.String(), "another publish of the same inputs pushed at the same time")
			if got != tc.want || warned != tc.want {
				t.Errorf("concurrentTwin = %v (warned %v), want %v\n%s", got, warned, tc.want, h.err.String())
			}
		})
	}
}

func TestInputsOfAReportWithoutInputsIsUnknown(t *testing.T) {
	if got := inputsOf(&ImageReport{}); got != "" {
		t.Errorf("inputsOf(no inputs) = %q, want \"\"", got)
	}
	if got := inputsOf(&ImageReport{Inputs: &ReportInputs{Digest: "sha256:in"}}); got != "sha256:in" {
		t.Errorf("inputsOf = %q, want sha256:in", got)
	}
}
