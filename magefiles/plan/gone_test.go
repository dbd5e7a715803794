package plan

import (
	"errors"
	"strings"
	"testing"
)

// The refusal of a gone base says what to do: a mirror holding a copy in
// REGISTRY_MIRRORS, and that `mage builder` then creates the builder with
// it (an existing one must be removed first).
func TestGoneBaseErrorSaysHowToBuildFromAMirror(t *testing.T) {
	const ref = "nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04"
	builderPart := "; `mage builder` then creates the builder determined-environments with that mirror (one created before keeps its config: `docker buildx rm determined-environments` first)"
	for name, c := range map[string]struct {
		e    GoneBaseError
		want []string
	}{
		"no mirror": {GoneBaseError{Image: "gpu-cuda-102-base", Ref: ref, Dependents: []string{"tf1-gpu"}, Err: ErrNoMirror}, []string{
			"gpu-cuda-102-base cannot be built: its base image " + ref + " does not exist; tf1-gpu, built on it, cannot be built either",
			". To build it, push a copy of " + ref + " to a registry you control and set REGISTRY_MIRRORS=docker.io=HOST[:PORT]" + builderPart,
		}},
		"mirror lacks it": {GoneBaseError{Image: "gpu-cuda-102-base", Ref: ref, Mirror: "mirror.example:5000", Err: errors.New("not found")}, []string{
			". The mirror mirror.example:5000 (REGISTRY_MIRRORS) does not have it either: push a copy of " + ref + " to mirror.example:5000/" + ref + builderPart,
		}},
	} {
		msg := c.e.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message\n%s\nlacks\n%s", name, msg, w)
			}
		}
	}
}

// The gone base is said once, for the image its chain starts from: an
// image whose base is planned too gets none (its base's error covers it),
// one planned without its base gets its own; a mirror for the registry,
// or a base that is not gone, means no error.
func TestGoneBaseIsSaidForTheImageTheChainStartsFrom(t *testing.T) {
	s := settings(t, nil)
	both, err := Plan(s, Request{Images: []string{"tf1-gpu"}, Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	if len(both) != 2 || both[0].Image.Name != "gpu-cuda-102-base" {
		t.Fatalf("planned %d images, want gpu-cuda-102-base then tf1-gpu", len(both))
	}
	var gb *GoneBaseError
	err = GoneBase(both[0], both, nil)
	if !errors.As(err, &gb) || gb.Image != "gpu-cuda-102-base" || gb.Ref != "nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04" ||
		gb.Why == "" || strings.Join(gb.Dependents, ",") != "tf1-gpu" || !errors.Is(err, ErrNoMirror) {
		t.Errorf("the base: %v", err)
	}
	if err := GoneBase(both[1], both, nil); err != nil {
		t.Errorf("tf1-gpu planned with its base: %v, want none (the base's covers it)", err)
	}
	alone := both[1:]
	if err := GoneBase(alone[0], alone, nil); !errors.As(err, &gb) || gb.Image != "tf1-gpu" || len(gb.Dependents) != 0 {
		t.Errorf("tf1-gpu planned alone: %v, want its own GoneBaseError", err)
	}
	if err := GoneBase(both[0], both, map[string]string{"docker.io": "mirror.example:5000"}); err != nil {
		t.Errorf("with a mirror for docker.io: %v", err)
	}
	if err := GoneBase(both[0], both, map[string]string{"nvcr.io": "mirror.example:5000"}); err == nil {
		t.Error("a mirror of another registry: no error")
	}
	other, err := Plan(s, Request{Images: []string{"tf2-gpu"}, Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range other {
		if err := GoneBase(sp, other, nil); err != nil {
			t.Errorf("%s (base not gone): %v", sp.Image.Name, err)
		}
	}
	if msg := (&GoneBaseError{Image: "b", Ref: "r", Err: ErrNoMirror}).Error(); strings.Contains(msg, "built on it") {
		t.Errorf("no dependents, yet: %s", msg)
	}
}

func TestDependentsAreTheImagesBuiltOnIt(t *testing.T) {
	specs, err := Plan(settings(t, nil), Request{Images: []string{"tf2-cpu", "pt-cpu", "tf1-cpu"}, Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(Dependents("cpu-py-38-base", specs), ","); got != "tf2-cpu,pt-cpu" && got != "pt-cpu,tf2-cpu" {
		t.Errorf("Dependents(cpu-py-38-base) = %s, want tf2-cpu and pt-cpu", got)
	}
	if got := Dependents("tf2-cpu", specs); len(got) != 0 {
		t.Errorf("Dependents(tf2-cpu) = %v, want none", got)
	}
}
