package plan

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

const (
	testHash    = "abc1234"
	testVersion = "0.26.4"
)

// contract is testdata/contract.json, extracted from the old Makefile's
// contract document (shared/reference/old-makefile.md), not from this code.
type contract struct {
	Images map[string]struct {
		Platforms []string          `json:"platforms"`
		Tags      []string          `json:"tags"`
		Args      map[string]string `json:"args"`
	} `json:"images"`
	NGC []string `json:"ngc"`
}

func loadContract(t *testing.T) contract {
	t.Helper()
	b, err := os.ReadFile("testdata/contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var c contract
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Images) != 17 {
		t.Fatalf("contract has %d images, want 17", len(c.Images))
	}
	return c
}

func settings(t testing.TB, env map[string]string) variant.Settings {
	t.Helper()
	s, err := variant.Parse(variant.MapLookup(env), testVersion, testHash)
	if err != nil {
		t.Fatalf("settings %v: %v", env, err)
	}
	return s
}

func fill(tag string) string {
	return strings.NewReplacer("<hash>", testHash, "<version>", testVersion).Replace(tag)
}

func argMap(sp Spec) map[string]string {
	m := map[string]string{}
	for _, a := range sp.BuildArgs {
		m[a.Name] = a.Value
	}
	return m
}

// variantCase describes how a variant changes the contract's default tags.
type variantCase struct {
	name   string
	env    map[string]string
	suffix string // "", "-mpi", "-mpi-ofi"
	dev    bool
}

var variantCases = []variantCase{
	{"default", map[string]string{}, "", false},
	{"mpi", map[string]string{"WITH_MPI": "1"}, "-mpi", false},
	{"mpi-ofi", map[string]string{"WITH_MPI": "1", "WITH_OFI": "1"}, "-mpi-ofi", false},
	{"mpi-nccl", map[string]string{"WITH_MPI": "1", "WITH_NCCL": "1"}, "-mpi", false},
	{"mpi-ofi-nccl", map[string]string{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1"}, "-mpi-ofi", false},
	{"mpi-ofi-nccl-trace", map[string]string{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1", "WITH_AWS_TRACE": "1"}, "-mpi-ofi", false},
	{"dev", map[string]string{"NGC_PUBLISH": "", "REGISTRY_REPO": "environments-dev"}, "", true},
	{"dev-mpi", map[string]string{"NGC_PUBLISH": "", "REGISTRY_REPO": "environments-dev", "WITH_MPI": "1"}, "-mpi", true},
	{"dev-mpi-ofi", map[string]string{"NGC_PUBLISH": "", "REGISTRY_REPO": "environments-dev", "WITH_MPI": "1", "WITH_OFI": "1"}, "-mpi-ofi", true},
}

// expectedTag turns a contract default tag into the variant's tag.
func expectedTag(tag string, vc variantCase, rocm bool) string {
	if vc.dev {
		tag = strings.Replace(tag, "determinedai/environments:", "determinedai/environments-dev:", 1)
	}
	if rocm || vc.suffix == "" {
		return fill(tag)
	}
	for _, acc := range []string{"-cpu-", "-gpu-"} {
		if i := strings.LastIndex(tag, acc); i >= 0 {
			return fill(tag[:i] + strings.TrimSuffix(acc, "-") + vc.suffix + "-" + tag[i+len(acc):])
		}
	}
	return "no suffix in " + tag
}

func TestEveryImageUnderEveryVariantMatchesTheContract(t *testing.T) {
	c := loadContract(t)
	for _, vc := range variantCases {
		s := settings(t, vc.env)
		s.Push = true // the contract is what the Makefile pushed (PUSH=1 build)
		for name, want := range c.Images {
			t.Run(vc.name+"/"+name, func(t *testing.T) {
				img, err := catalog.Lookup(name)
				if err != nil {
					t.Fatal(err)
				}
				rocm := img.Accel == catalog.ROCm
				specs, err := Plan(s, Request{Images: []string{name}, Mode: Build})
				if err != nil {
					t.Fatal(err)
				}
				sp := specs[len(specs)-1]
				if sp.Image.Name != name {
					t.Fatalf("last spec is %s, want %s", sp.Image.Name, name)
				}
				// The base is built first.
				if img.Base != "" && (len(specs) != 2 || specs[0].Image.Name != img.Base) {
					t.Fatalf("specs %v: want base %s first", names(specs), img.Base)
				}
				var wantTags []string
				for _, tg := range want.Tags {
					wantTags = append(wantTags, expectedTag(tg, vc, rocm))
				}
				if got := sp.Tags.List(); !slices.Equal(got, wantTags) {
					t.Errorf("tags %v, want %v", got, wantTags)
				}
				wantPlat := want.Platforms
				if s.MPI {
					wantPlat = []string{"linux/amd64"}
				}
				if !slices.Equal(sp.Platforms, wantPlat) {
					t.Errorf("platforms %v, want %v", sp.Platforms, wantPlat)
				}
				got := argMap(sp)
				for k, v := range want.Args {
					v = fill(v)
					if k == "BASE_IMAGE" && img.Base != "" {
						v = expectedTag(want.Args[k], vc, false)
					}
					if got[k] != v {
						t.Errorf("build arg %s=%q, want %q", k, got[k], v)
					}
					if !slices.Contains(sp.Argv, "--build-arg") || !containsPair(sp.Argv, "--build-arg", k+"="+v) {
						t.Errorf("argv lacks --build-arg %s=%s", k, v)
					}
				}
				checkHorovod(t, img, s, got)
				// PUSH=1 build pushes every image, loads none.
				if push, load := slices.Contains(sp.Argv, "--push"), slices.Contains(sp.Argv, "--load"); !push || load {
					t.Errorf("push=%v load=%v for platforms %v", push, load, wantPlat)
				}
				// NGC tags: exactly the contract's NGC images, none without NGC publishing.
				wantNGC := slices.Contains(c.NGC, name) && !vc.dev
				if wantNGC {
					ngcRepo := "nvcr.io/isv-ngc-partner/determined/environments:"
					exp := []string{
						strings.Replace(wantTags[0], "determinedai/environments:", ngcRepo, 1),
						strings.Replace(wantTags[1], "determinedai/environments:", ngcRepo, 1),
					}
					if !slices.Equal(sp.NGCTags.List(), exp) {
						t.Errorf("NGC tags %v, want %v", sp.NGCTags.List(), exp)
					}
				} else if sp.NGCTags.Hashed != "" {
					t.Errorf("NGC tags %v for an image that must not go to NGC", sp.NGCTags.List())
				}
			})
		}
	}
}

func checkHorovod(t *testing.T, img catalog.Image, s variant.Settings, got map[string]string) {
	t.Helper()
	// The fabric each image takes, as the previous images had it: OFI in
	// the CPU bases and the CUDA 11.3 base, NCCL in the CUDA 11.3 base (so
	// in the cuda-11.3 framework images), the AWS plugin in tf2-gpu.
	cuda113 := img.Name == "gpu-cuda-113-base" || img.Base == "gpu-cuda-113-base"
	ofiBase := img.Accel == catalog.CPU || cuda113
	ofi := s.MPI && s.OFI && ofiBase
	nccl := s.MPI && s.NCCL && cuda113
	aws := ofi && nccl && img.Name == "tf2-gpu"
	if img.IsBase() {
		if got["WITH_MPI"] != on(s.MPI) || got["WITH_OFI"] != on(ofi) {
			t.Errorf("base variant args WITH_MPI=%q WITH_OFI=%q, want WITH_OFI=%s", got["WITH_MPI"], got["WITH_OFI"], on(ofi))
		}
		if img.Accel == catalog.CUDA && got["WITH_NCCL"] != on(nccl) {
			t.Errorf("cuda base WITH_NCCL=%q, want %s", got["WITH_NCCL"], on(nccl))
		}
		if _, ok := got["WITH_AWS_TRACE"]; ok {
			t.Errorf("WITH_AWS_TRACE passed to a base: the AWS plugin is built in tf2-gpu")
		}
		// The ENV switches: "1" or "" (empty is off), UCX unless OFI.
		flag := func(b bool) string {
			if b {
				return "1"
			}
			return ""
		}
		ucx := "ucx"
		if ofi {
			ucx = ""
		}
		switches := map[string]string{"MPI_ON": flag(s.MPI), "OFI_ON": flag(ofi), "UCX_ON": ucx}
		if img.Accel == catalog.CUDA {
			switches["NCCL_ON"] = flag(nccl)
		}
		for k, v := range switches {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("base switch %s=%q (passed: %v), want %q", k, g, ok, v)
			}
		}
		if _, ok := got["NCCL_ON"]; ok && img.Accel != catalog.CUDA {
			t.Errorf("NCCL_ON passed to %s, which has no NCCL", img.Name)
		}
		return
	}
	mpi := s.MPI && img.Accel != catalog.ROCm
	want := map[string]string{"HOROVOD_WITH_MPI": "0", "HOROVOD_WITHOUT_MPI": "1", "HOROVOD_CPU_OPERATIONS": "GLOO"}
	if mpi {
		want = map[string]string{"HOROVOD_WITH_MPI": "1", "HOROVOD_WITHOUT_MPI": "0", "HOROVOD_CPU_OPERATIONS": "MPI"}
	}
	switch {
	case img.Accel == catalog.CUDA && mpi && !s.NCCL:
		want["HOROVOD_GPU_OPERATIONS"] = "MPI"
	case img.Accel != catalog.CPU:
		want["HOROVOD_GPU_OPERATIONS"] = "NCCL"
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if img.Accel == catalog.CPU {
		if _, ok := got["HOROVOD_GPU_OPERATIONS"]; ok {
			t.Error("CPU image gets HOROVOD_GPU_OPERATIONS")
		}
	}
	if img.Accel == catalog.CUDA {
		flag := map[bool]string{true: "1", false: ""}
		for k, v := range map[string]string{"NCCL_ON": flag[nccl], "AWS_PLUGIN": flag[aws], "WITH_AWS_TRACE": on(aws && s.AWSTrace)} {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s=%q (passed: %v), want %q", k, g, ok, v)
			}
		}
	}
}

func containsPair(argv []string, flag, value string) bool {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag && argv[i+1] == value {
			return true
		}
	}
	return false
}

func names(specs []Spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Image.Name)
	}
	return out
}

// cell identifies what an image is under a variant: its name and its build
// inputs. Two variants that build the same inputs (the ROCm image ignores
// MPI) are the same cell.
type cell struct{ image, inputs string }

func TestNoTwoCellsOfTheMatrixShareATag(t *testing.T) {
	owner := map[string]cell{}
	cells := 0
	for _, dev := range []bool{false, true} {
		for _, combo := range variant.Matrix() {
			env := map[string]string{}
			for k, v := range combo.Env {
				env[k] = v
			}
			if dev {
				env["NGC_PUBLISH"], env["REGISTRY_REPO"] = "", "environments-dev"
			}
			s := settings(t, env)
			specs, err := Plan(s, Request{Images: catalog.Names(), Mode: Publish})
			if err != nil {
				t.Fatal(err)
			}
			cells += len(specs)
			for _, c := range tagCollisions(owner, specs) {
				t.Errorf("%s under %s (dev=%v)", c, combo.Name, dev)
			}
		}
	}
	// 17 images x 3 variants x 2 modes, 4 tags per NGC image in release mode.
	if cells != 17*3*2 || len(owner) < 17*2*2*3-2*2*2 {
		t.Errorf("checked %d cells and %d tags: the matrix is smaller than expected", cells, len(owner))
	}
}

// tagCollisions records in owner the cell each tag of specs belongs to and
// returns one line for every tag that two different cells produce.
func tagCollisions(owner map[string]cell, specs []Spec) []string {
	var out []string
	for _, sp := range specs {
		c := cell{sp.Image.Name, sp.InputsDigest}
		for _, tag := range append(sp.Tags.List(), sp.NGCTags.List()...) {
			if prev, ok := owner[tag]; ok && prev != c {
				out = append(out, fmt.Sprintf("tag %s is produced by %s and by %s", tag, prev.image, c.image))
			}
			owner[tag] = c
		}
	}
	return out
}

func TestTheCollisionCheckCatchesACollision(t *testing.T) {
	// The check above must be able to fail: with pt-cpu doctored to have
	// tf2-cpu's tag body, the plan of every image has two images on each of
	// tf2-cpu's 4 tags, and tagCollisions names them.
	s := settings(t, nil)
	specs, err := Plan(s, Request{Images: catalog.Names(), Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	tf2, _ := catalog.Lookup("tf2-cpu")
	for i, sp := range specs {
		if sp.Image.Name == "pt-cpu" {
			img := sp.Image
			img.Body = tf2.Body
			if specs[i], err = spec(img, s, Request{Mode: Publish}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := tagCollisions(map[string]cell{}, specs); len(got) != 4 {
		t.Errorf("%d collisions found, want tf2-cpu's 4 tags (2 Docker Hub, 2 NGC): %q", len(got), got)
	} else {
		for _, c := range got {
			if !strings.Contains(c, "tf2-cpu") || !strings.Contains(c, "pt-cpu") || !strings.Contains(c, ":py-3.8-pytorch-1.12-tf-2.11-cpu-") {
				t.Errorf("collision %q does not name tf2-cpu's tag and both images", c)
			}
		}
	}
	// The undoctored plan has none.
	clean, err := Plan(s, Request{Images: catalog.Names(), Mode: Publish})
	if err != nil {
		t.Fatal(err)
	}
	if got := tagCollisions(map[string]cell{}, clean); len(got) != 0 {
		t.Errorf("the real plan collides: %q", got)
	}
}

func TestNCCLAndTraceChangeContentNotTags(t *testing.T) {
	// The contract's suffixes encode MPI and OFI only; WITH_NCCL and
	// WITH_AWS_TRACE change what is inside the -mpi images. The inputs
	// digest still tells them apart, so publish never treats one as the other.
	plain := settings(t, map[string]string{"WITH_MPI": "1"})
	nccl := settings(t, map[string]string{"WITH_MPI": "1", "WITH_NCCL": "1"})
	a, _ := Plan(plain, Request{Images: []string{"tf2-gpu"}, Mode: Publish})
	b, _ := Plan(nccl, Request{Images: []string{"tf2-gpu"}, Mode: Publish})
	if a[1].Tags != b[1].Tags {
		t.Errorf("tags differ: %v vs %v", a[1].Tags, b[1].Tags)
	}
	if a[1].InputsDigest == b[1].InputsDigest || a[0].InputsDigest == b[0].InputsDigest {
		t.Error("NCCL does not change the inputs digest")
	}
}

func TestPlanOrdersBasesFirstWithoutDuplicates(t *testing.T) {
	s := settings(t, nil)
	specs, err := Plan(s, Request{Images: []string{"pt-gpu", "tf2-gpu", "tf2-cpu", "gpu-cuda-113-base"}, Mode: Build})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cpu-py-38-base", "gpu-cuda-113-base", "tf2-cpu", "tf2-gpu", "pt-gpu"}
	if got := names(specs); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	for _, sp := range specs {
		if sp.Base != "" && !slices.Contains(names(specs), sp.Base) {
			t.Errorf("%s: base %s not planned", sp.Image.Name, sp.Base)
		}
	}
}

func TestUnknownImageSuggestsClosestNames(t *testing.T) {
	_, err := Plan(settings(t, nil), Request{Images: []string{"tf2-gpux"}})
	if err == nil || !strings.Contains(err.Error(), `unknown image "tf2-gpux"`) || !strings.Contains(err.Error(), "did you mean tf2-gpu") {
		t.Errorf("error %v", err)
	}
}

func ExamplePlan() {
	s, _ := variant.Parse(variant.MapLookup(nil), "0.26.4", "abc1234")
	specs, _ := Plan(s, Request{Images: []string{"pt-cpu"}, Mode: Publish})
	for _, sp := range specs {
		fmt.Println(sp.Image.Name, sp.Tags.Hashed, sp.Platforms)
	}
	// Output:
	// cpu-py-38-base determinedai/environments:py-3.8-base-cpu-abc1234 [linux/amd64 linux/arm64]
	// pt-cpu determinedai/environments:py-3.8-pytorch-1.12-cpu-abc1234 [linux/amd64 linux/arm64]
}
