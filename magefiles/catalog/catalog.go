// Package catalog is the typed list of every image the project builds: the
// seventeen images of the old Makefile, with their recipes, bases, platforms
// and pinned build inputs.
package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// Accelerator says which hardware an image targets; it decides the tag prefix
// and suffix.
type Accelerator string

const (
	CPU  Accelerator = "cpu"
	CUDA Accelerator = "cuda"
	ROCm Accelerator = "rocm"
)

// Recipe files, relative to the recipes directory.
const (
	RecipeCPU = "Dockerfile.cpu"
	RecipeGPU = "Dockerfile.gpu"
)

// Arg is one pinned build argument.
type Arg struct {
	Name, Value string
}

// Image is one entry of the catalog.
type Image struct {
	// Name is the catalog name, as in the old `make build-<name>`.
	Name string
	// Accel decides prefix and suffix of the tag.
	Accel Accelerator
	// Prefix is the tag prefix without its trailing dash: "py-3.8", "cuda-11.3", "rocm-5.0".
	Prefix string
	// Body is the tag body between prefix and suffix: "base", "pytorch-1.12-tf-2.11".
	Body string
	// Recipe is the Dockerfile, Stage the target stage in it.
	Recipe, Stage string
	// Base is the catalog name of the image this one is built FROM ("" for
	// images built from an external image).
	Base string
	// From is the external image a base (or the ROCm image) starts from.
	From string
	// FromGone, when set, says that From no longer exists where it was
	// published, and since when: such an image builds only from a copy on a
	// registry mirror (REGISTRY_MIRRORS), and the tool says so before
	// anything is built.
	FromGone string
	// MultiArch images are built for linux/amd64 and linux/arm64 unless WITH_MPI=1.
	MultiArch bool
	// NGC images are also published to the NGC registry.
	NGC bool
	// Pins are the image's own pinned build arguments, without BASE_IMAGE.
	Pins []Arg
	// Fabric says which parts of the WITH_OFI / WITH_NCCL stack the image
	// takes, as the previous images had them; the tag suffix is the same
	// for every image of a variant.
	Fabric Fabric
}

// Fabric is what an image takes of the MPI variants' fabric stack. A base
// without OFI builds Open MPI on MOFED and UCX also under WITH_OFI=1 (its
// -mpi-ofi tag then names a UCX build, as before); without NCCL it uses the
// CUDA image's NCCL also under WITH_NCCL=1.
type Fabric struct {
	// OFI: a base builds libfabric and Open MPI on it under WITH_OFI=1 (the
	// CPU bases and the CUDA 11.3 base).
	OFI bool
	// NCCL: a CUDA base builds NCCL and GDRCopy under WITH_NCCL=1 (the CUDA
	// 11.3 base, so the cuda-11.3 framework images have them).
	NCCL bool
	// AWSPlugin: a framework image builds the AWS OFI-NCCL plugin when its
	// base has both OFI and NCCL (tf2-gpu).
	AWSPlugin bool
}

// IsBase reports whether other images are built on this one.
func (i Image) IsBase() bool { return i.Stage == "base" }

const (
	apexGit    = "https://github.com/determined-ai/apex.git@3caf0f40c92e92b40051d3afff8568a24b8be28d"
	tbProfiler = "torch-tb-profiler==0.4.1"
	cpuWheels  = "https://download.pytorch.org/whl/cpu/torch_stable.html"
	cu102      = "https://download.pytorch.org/whl/cu102/torch_stable.html"
	cu113      = "https://download.pytorch.org/whl/cu113/torch_stable.html"
	torch112   = "torch==1.12.0+%[1]s torchvision==0.13.0+%[1]s torchaudio==0.12.0+%[1]s -f %[2]s"
	torch110   = "torch==1.10.2+cu113 torchvision==0.11.3+cu113 torchaudio==0.10.2+cu113 -f " + cu113
)

func pyBase(name, py, python string, multi bool) Image {
	return Image{
		Name: name, Accel: CPU, Prefix: "py-" + py, Body: "base",
		Recipe: RecipeCPU, Stage: "base", From: "ubuntu:20.04", MultiArch: multi,
		Pins:   []Arg{{"PYTHON_VERSION", python}, {"UBUNTU_VERSION", "ubuntu20.04"}},
		Fabric: Fabric{OFI: true},
	}
}

func cudaBase(name, cuda, from, python, ubuntu string) Image {
	return Image{
		Name: name, Accel: CUDA, Prefix: "cuda-" + cuda, Body: "base",
		Recipe: RecipeGPU, Stage: "base", From: from,
		Pins: []Arg{{"PYTHON_VERSION", python}, {"UBUNTU_VERSION", ubuntu}},
	}
}

func withFabric(img Image, f Fabric) Image {
	img.Fabric = f
	return img
}

// cuda102Base is built FROM a CUDA image NVIDIA has deleted (docs/images.md,
// "Base images that are gone").
func cuda102Base() Image {
	img := cudaBase("gpu-cuda-102-base", "10.2", "nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04", "3.7.11", "ubuntu18.04")
	img.FromGone = "NVIDIA deleted it from Docker Hub and NGC in 2023 (end-of-life CUDA tags are removed under its container support policy)"
	return img
}

var images = []Image{
	pyBase("cpu-py-37-base", "3.7", "3.7.11", false),
	pyBase("cpu-py-38-base", "3.8", "3.8.12", true),
	cuda102Base(),
	cudaBase("gpu-cuda-111-base", "11.1", "nvidia/cuda:11.1.1-cudnn8-devel-ubuntu20.04", "3.8.12", "ubuntu20.04"),
	cudaBase("gpu-cuda-112-base", "11.2", "nvidia/cuda:11.2.2-cudnn8-devel-ubuntu20.04", "3.8.12", "ubuntu20.04"),
	withFabric(cudaBase("gpu-cuda-113-base", "11.3", "nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04", "3.8.12", "ubuntu20.04"),
		Fabric{OFI: true, NCCL: true}),
	{
		Name: "tf1-cpu", Accel: CPU, Prefix: "py-3.7", Body: "pytorch-1.7-tf-1.15",
		Recipe: RecipeCPU, Stage: "framework", Base: "cpu-py-37-base",
		Pins: []Arg{
			{"HOROVOD_PIP", "horovod==0.24.2"},
			{"TENSORFLOW_PIP", "tensorflow==1.15.5"},
			{"TORCHVISION_PIP", "torchvision==0.8.2 -f " + cpuWheels},
			{"TORCH_PIP", "torch==1.7.1 -f " + cpuWheels},
		},
	},
	{
		Name: "tf2-cpu", Accel: CPU, Prefix: "py-3.8", Body: "pytorch-1.12-tf-2.11",
		Recipe: RecipeCPU, Stage: "framework", Base: "cpu-py-38-base", MultiArch: true, NGC: true,
		Pins: []Arg{
			{"HOROVOD_PIP", "horovod==0.27.0"},
			{"TENSORFLOW_PIP", "tensorflow-cpu==2.11.1"},
			{"TORCH_PIP", fmt.Sprintf(torch112, "cpu", cpuWheels)},
			{"TORCH_TB_PROFILER_PIP", tbProfiler},
		},
	},
	{
		Name: "tf28-cpu", Accel: CPU, Prefix: "py-3.8", Body: "tf-2.8",
		Recipe: RecipeCPU, Stage: "framework", Base: "cpu-py-38-base", MultiArch: true, NGC: true,
		Pins: []Arg{
			{"HOROVOD_PIP", "horovod==0.24.2"},
			{"HOROVOD_WITH_PYTORCH", "0"},
			{"TENSORFLOW_PIP", "tensorflow-cpu==2.8.3"},
		},
	},
	{
		Name: "pt-cpu", Accel: CPU, Prefix: "py-3.8", Body: "pytorch-1.12",
		Recipe: RecipeCPU, Stage: "framework", Base: "cpu-py-38-base", MultiArch: true, NGC: true,
		Pins: []Arg{
			{"HOROVOD_PIP", "horovod==0.24.2"},
			{"TORCH_PIP", fmt.Sprintf(torch112, "cpu", cpuWheels)},
			{"TORCH_TB_PROFILER_PIP", tbProfiler},
		},
	},
	{
		Name: "tf1-gpu", Accel: CUDA, Prefix: "cuda-10.2", Body: "pytorch-1.7-tf-1.15",
		Recipe: RecipeGPU, Stage: "framework", Base: "gpu-cuda-102-base",
		Pins: []Arg{
			{"APEX_GIT", apexGit},
			{"HOROVOD_PIP", "horovod==0.24.2"},
			{"TENSORFLOW_PIP", "https://github.com/determined-ai/tensorflow-wheels/releases/download/0.1.0/tensorflow_gpu-1.15.5-cp37-cp37m-linux_x86_64.whl"},
			{"TORCHVISION_PIP", "torchvision==0.8.2 -f " + cu102},
			{"TORCH_CUDA_ARCH_LIST", "3.7;6.0;6.1;6.2;7.0;7.5"},
			{"TORCH_PIP", "torch==1.7.1 -f " + cu102},
		},
	},
	{
		Name: "tf2-gpu", Accel: CUDA, Prefix: "cuda-11.3", Body: "pytorch-1.12-tf-2.11",
		Recipe: RecipeGPU, Stage: "framework", Base: "gpu-cuda-113-base", NGC: true,
		Fabric: Fabric{AWSPlugin: true},
		Pins: []Arg{
			{"APEX_GIT", apexGit},
			{"HOROVOD_PIP", "horovod==0.27.0"},
			{"TENSORFLOW_PIP", "tensorflow==2.11.1"},
			{"TORCH_CUDA_ARCH_LIST", "3.7;6.0;6.1;6.2;7.0;7.5;8.0"},
			{"TORCH_PIP", fmt.Sprintf(torch112, "cu113", cu113)},
			{"TORCH_TB_PROFILER_PIP", tbProfiler},
		},
	},
	{
		Name: "tf28-gpu", Accel: CUDA, Prefix: "cuda-11.2", Body: "tf-2.8",
		Recipe: RecipeGPU, Stage: "framework", Base: "gpu-cuda-112-base", NGC: true,
		Pins: []Arg{
			{"HOROVOD_PIP", "horovod==0.24.2"},
			{"HOROVOD_WITH_PYTORCH", "0"},
			{"TENSORFLOW_PIP", "tensorflow==2.8.3"},
		},
	},
	{
		Name: "pt-gpu", Accel: CUDA, Prefix: "cuda-11.3", Body: "pytorch-1.12",
		Recipe: RecipeGPU, Stage: "framework", Base: "gpu-cuda-113-base", NGC: true,
		Pins: []Arg{
			{"APEX_GIT", apexGit},
			{"HOROVOD_PIP", "horovod==0.24.2"},
			{"TORCH_CUDA_ARCH_LIST", "3.7;6.0;6.1;6.2;7.0;7.5;8.0"},
			{"TORCH_PIP", fmt.Sprintf(torch112, "cu113", cu113)},
			{"TORCH_TB_PROFILER_PIP", tbProfiler},
		},
	},
	{
		Name: "deepspeed-gpu", Accel: CUDA, Prefix: "cuda-11.3", Body: "pytorch-1.10-deepspeed-0.8.3",
		Recipe: RecipeGPU, Stage: "framework", Base: "gpu-cuda-113-base", NGC: true,
		Pins: []Arg{
			{"APEX_GIT", apexGit},
			{"DEEPSPEED_PIP", "deepspeed==0.8.3"},
			{"TORCH_CUDA_ARCH_LIST", "6.0;6.1;6.2;7.0;7.5;8.0"},
			{"TORCH_PIP", torch110},
			{"TORCH_TB_PROFILER_PIP", tbProfiler},
		},
	},
	{
		Name: "gpt-neox-deepspeed-gpu", Accel: CUDA, Prefix: "cuda-11.3", Body: "pytorch-1.10-gpt-neox-deepspeed",
		Recipe: RecipeGPU, Stage: "framework", Base: "gpu-cuda-113-base", NGC: true,
		Pins: []Arg{
			{"APEX_GIT", apexGit},
			{"DEEPSPEED_PIP", "git+https://github.com/determined-ai/deepspeed.git@eleuther_dai"},
			{"TORCH_CUDA_ARCH_LIST", "6.0;6.1;6.2;7.0;7.5;8.0"},
			{"TORCH_PIP", torch110},
			{"TORCH_TB_PROFILER_PIP", tbProfiler},
		},
	},
	{
		Name: "pytorch10-tf27-rocm50", Accel: ROCm, Prefix: "rocm-5.0", Body: "pytorch-1.10-tf-2.7-rocm",
		Recipe: RecipeGPU, Stage: "rocm", From: "amdih/pytorch:rocm5.0_ubuntu18.04_py3.7_pytorch_1.10.0",
		Pins: []Arg{
			{"HOROVOD_PIP", "horovod==0.25.0"},
			{"TENSORFLOW_PIP", "tensorflow-rocm==2.7.1"},
		},
	},
}

// All returns every image in catalog order: bases first, then the images
// built on them, in the order of the old Makefile.
func All() []Image {
	out := make([]Image, len(images))
	copy(out, images)
	for i := range out {
		out[i].Pins = append([]Arg(nil), out[i].Pins...)
	}
	return out
}

// Names returns every catalog name in catalog order.
func Names() []string {
	out := make([]string, len(images))
	for i, img := range images {
		out[i] = img.Name
	}
	return out
}

// Lookup finds an image by catalog name. An unknown name gets an error that
// suggests the closest names.
func Lookup(name string) (Image, error) {
	for _, img := range images {
		if img.Name == name {
			img.Pins = append([]Arg(nil), img.Pins...)
			return img, nil
		}
	}
	return Image{}, &UnknownImageError{Name: name, Suggestions: closest(name, Names(), 3)}
}

// UnknownImageError is returned for a name that is not in the catalog.
type UnknownImageError struct {
	Name        string
	Suggestions []string
}

func (e *UnknownImageError) Error() string {
	msg := fmt.Sprintf("unknown image %q", e.Name)
	if len(e.Suggestions) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(e.Suggestions, ", "))
	}
	return msg + " (`mage images` lists all: " + strings.Join(Names(), ", ") + ")"
}

// closest returns up to n candidates ordered by edit distance (ties keep
// catalog order), dropping those too far away to be a plausible typo.
func closest(name string, candidates []string, n int) []string {
	type scored struct {
		name string
		d, i int
	}
	var s []scored
	for i, c := range candidates {
		d := distance(strings.ToLower(name), c)
		if strings.Contains(c, strings.ToLower(name)) && name != "" {
			d = min(d, 2)
		}
		if d <= max(3, len(c)/2) {
			s = append(s, scored{c, d, i})
		}
	}
	sort.Slice(s, func(a, b int) bool {
		if s[a].d != s[b].d {
			return s[a].d < s[b].d
		}
		return s[a].i < s[b].i
	})
	var out []string
	for _, x := range s {
		if len(out) == n {
			break
		}
		out = append(out, x.name)
	}
	return out
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
