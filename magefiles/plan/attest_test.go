package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

func TestPublishBuildsCarryAttestations(t *testing.T) {
	s, err := variant.Parse(variant.MapLookup(map[string]string{}), "0.26.4", "abc1234")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Join(pub[1].Argv, " ")
	for _, want := range []string{"--attest type=provenance,mode=max", "--attest type=sbom,generator=" + variant.DefaultSBOMGenerator} {
		if !strings.Contains(argv, want) {
			t.Errorf("publish argv lacks %q: %s", want, argv)
		}
	}
	// A PUSH=1 build attests too, with the same inputs as the publish.
	s.Push = true
	pushed, err := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Build})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pushed[0].Argv, "--attest") || pushed[0].InputsDigest != pub[0].InputsDigest {
		t.Errorf("PUSH=1 build: argv %v, inputs %s (publish: %s)", pushed[0].Argv, pushed[0].InputsDigest, pub[0].InputsDigest)
	}
	s.Push = false
	local, err := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Build})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(local[0].Argv, "--attest") {
		t.Errorf("a local build attests: %v", local[0].Argv)
	}
}

func TestBuildArgumentsHoldNoSecret(t *testing.T) {
	// The catalog's own build arguments pass (every image plans above);
	// these would be recorded by the provenance.
	for _, a := range []catalog.Arg{
		{Name: "HF_TOKEN", Value: "x"},
		{Name: "AWS_SECRET_ACCESS_KEY", Value: "x"},
		{Name: "APEX_GIT", Value: "https://user:pw@github.com/x/apex.git"},
	} {
		err := checkNoSecrets("tf2-cpu", []catalog.Arg{{Name: "TORCH_PIP", Value: "torch==1.12.1"}, a})
		if err == nil || !strings.HasPrefix(err.Error(), "image tf2-cpu: build argument "+a.Name) {
			t.Errorf("%s=%s: %v", a.Name, a.Value, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	for _, img := range catalog.All() {
		args, err := BuildArgs(img, variant.Settings{DockerhubRegistry: "determinedai", RegistryRepo: "environments", Version: "0.1.0", Hash: "abc1234"})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkNoSecrets(img.Name, args); err != nil {
			t.Errorf("catalog image refused: %v", err)
		}
	}
}
