package inputs

import (
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// TestListNamesEveryKind: the listing names each image and an input of
// every kind with where it is declared.
func TestListNamesEveryKind(t *testing.T) {
	imgs, err := All()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteList(&b, imgs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"gpu-cuda-113-base\n",
		"tf2-gpu (built on gpu-cuda-113-base, whose inputs it also reads)",
		"image  nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04",
		"checksum " + minicondaSum + "; from dockerfile_scripts/install_python.sh",
		"git    https://github.com/NVIDIA/nccl.git@v2.15.5-1",
		"when WITH_NCCL=1",
		"pip   torch==1.12.0+cu113",
		"find-links https://download.pytorch.org/whl/cu113/torch_stable.html; from catalog tf2-gpu TORCH_PIP",
		"apt http://archive.ubuntu.com/ubuntu focal main,restricted,universe,multiverse",
		"conda  python=3.8.12 (arm64)",
		"17 images, ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q", want)
		}
	}
}

// TestForBuildSelectsTheVariant: a WITH_MPI=0 amd64 build reads no MPI
// download and no arm64 installer; WITH_MPI=1 WITH_OFI=1 reads libfabric,
// not UCX.
func TestForBuildSelectsTheVariant(t *testing.T) {
	has := func(ii ImageInputs, name string) bool {
		for _, in := range ii.Inputs {
			if in.Name == name {
				return true
			}
		}
		return false
	}
	plain, err := ForBuild("cpu-py-38-base", Variant{Platforms: []string{"linux/amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	if has(plain, openMPIURL) || has(plain, miniforgeURL) || !has(plain, minicondaURL) {
		t.Errorf("WITH_MPI=0 linux/amd64 inputs wrong: %v", plain.Inputs)
	}
	ofi, err := ForBuild("gpu-cuda-113-base", Variant{Flags: map[string]bool{"WITH_MPI": true, "WITH_OFI": true, "WITH_NCCL": true}, Platforms: []string{"linux/amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	if !has(ofi, libfabric) || has(ofi, ucxURL) || has(ofi, awsOFINCCL) || !has(ofi, ncclGit) {
		t.Errorf("WITH_MPI=1 WITH_OFI=1 WITH_NCCL=1 inputs wrong: %v", ofi.Inputs)
	}
	// The fabric each image takes (catalog.Fabric): the AWS plugin only in
	// tf2-gpu; the CUDA 11.2 base builds UCX, not libfabric, nor NCCL.
	variant := Variant{Flags: map[string]bool{"WITH_MPI": true, "WITH_OFI": true, "WITH_NCCL": true}, Platforms: []string{"linux/amd64"}}
	for name, want := range map[string]map[string]bool{
		"tf2-gpu":           {awsOFINCCL: true},
		"pt-gpu":            {awsOFINCCL: false},
		"gpu-cuda-112-base": {libfabric: false, ucxURL: true, ncclGit: false},
	} {
		ii, err := ForBuild(name, variant)
		if err != nil {
			t.Fatal(err)
		}
		for in, w := range want {
			if has(ii, in) != w {
				t.Errorf("%s under WITH_MPI=1 WITH_OFI=1 WITH_NCCL=1: reads %s = %v, want %v", name, in, has(ii, in), w)
			}
		}
	}
	multi, err := ForBuild("cpu-py-38-base", Variant{Platforms: []string{"linux/amd64", "linux/arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	if !has(multi, miniforgeURL) {
		t.Error("a linux/arm64 build does not read the Miniforge installer")
	}
}

func TestOnlyKeepsTheImageAndItsBase(t *testing.T) {
	imgs, err := All()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Only(imgs, "pt-gpu")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Image != "gpu-cuda-113-base" || got[1].Image != "pt-gpu" {
		t.Errorf("Only(pt-gpu) = %v", got)
	}
	if _, err := Only(imgs, "pt-gpux"); err == nil || !strings.Contains(err.Error(), `unknown image "pt-gpux"`) {
		t.Errorf("unknown image: %v", err)
	}
}

// TestGoneBaseIsDeclaredGone: the catalog's FromGone reaches the input, so
// the check expects the image missing.
func TestGoneBaseIsDeclaredGone(t *testing.T) {
	for _, img := range catalog.All() {
		if img.From == "" {
			continue
		}
		ins, err := For(img)
		if err != nil {
			t.Fatal(err)
		}
		if ins[0].Kind != Image || ins[0].Name != img.From || ins[0].Gone != img.FromGone {
			t.Errorf("%s: first input %+v, want image %s gone %q", img.Name, ins[0], img.From, img.FromGone)
		}
	}
}
