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
