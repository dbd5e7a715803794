package inputs

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// check runs a Checker over ins (one image "img") and returns the results
// by the input's String.
func check(t *testing.T, c *Checker, ins ...Input) map[string]Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]Result{}
	for _, r := range c.Check(ctx, []ImageInputs{{Image: "img", Inputs: ins}}) {
		out[r.Input.Key()] = r
	}
	return out
}

func wantStatus(t *testing.T, rs map[string]Result, in Input, want Status, detail string) {
	t.Helper()
	r, ok := rs[in.Key()]
	if !ok {
		t.Errorf("%s: no result", in)
		return
	}
	if r.Status != want || !strings.Contains(r.Detail, detail) {
		t.Errorf("%s: %s (%s), want %s with %q", in, r.Status, r.Detail, want, detail)
	}
	if r.Failed() && r.Fix == "" {
		t.Errorf("%s failed without saying what to do", in)
	}
}

func mirrorTo(from, to string) Sources {
	return Sources{Mirrors: []Mirror{{From: from, To: to}}}
}

func TestCheckImages(t *testing.T) {
	origin := newRegistryStandin(t)
	mirror := newRegistryStandin(t)
	origin.push(t, "library/ubuntu:20.04")
	origin.push(t, "nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04")
	origin.remove(t, "nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04") // NVIDIA deleted it
	mirror.push(t, "nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04")
	img := func(repoTag string) Input {
		return Input{Kind: Image, Name: origin.host + "/" + repoTag, Where: "catalog x From"}
	}
	ubuntu, cuda102 := img("library/ubuntu:20.04"), img("nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04")
	cuda113, never := img("nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04"), img("nvidia/cuda:9.0-devel")

	c := NewChecker(map[string]string{origin.host: mirror.host}, Sources{}, false)
	rs := check(t, c, ubuntu, cuda102, cuda113, never)
	wantStatus(t, rs, ubuntu, OK, "sha256:")  // not in the mirror: the origin has it
	wantStatus(t, rs, cuda113, OK, "sha256:") // only the mirror has it
	wantStatus(t, rs, cuda102, Missing, "not found")
	wantStatus(t, rs, never, Missing, "not found")
	if fix := rs[cuda102.Key()].Fix; !strings.Contains(fix, "REGISTRY_MIRRORS") {
		t.Errorf("fix %q does not mention REGISTRY_MIRRORS", fix)
	}

	// Without the mirror, the image only the mirror has is missing.
	rs = check(t, NewChecker(nil, Sources{}, false), cuda113)
	wantStatus(t, rs, cuda113, Missing, "not found")

	// An image the catalog knows is gone is a warning, not a failure, and
	// found when a mirror has it.
	goneCuda102, goneCuda113 := cuda102, cuda113
	goneCuda102.Gone, goneCuda113.Gone = "NVIDIA deleted it", "NVIDIA deleted it"
	rs = check(t, NewChecker(map[string]string{origin.host: mirror.host}, Sources{}, false), goneCuda102, goneCuda113)
	wantStatus(t, rs, goneCuda102, Warn, "gone, as the catalog says (NVIDIA deleted it)")
	wantStatus(t, rs, goneCuda113, OK, "sha256:")
	if err := Verdict(slices.Collect(maps.Values(rs))); err != nil {
		t.Errorf("a known-gone base fails the check: %v", err)
	}
}

func TestCheckFiles(t *testing.T) {
	files := newFileStandin(t)
	data := []byte("#!/bin/sh\necho installer\n")
	sum := sha256.Sum256(data)
	md := md5.Sum(data)
	files.put("/miniconda/Miniconda3.sh", data)
	files.put("/ucx/ucx-1.10.1.tar.gz", []byte("tarball"))
	const real = "https://repo.example.com"
	src := mirrorTo(real, files.url)
	installer := Input{Kind: File, Name: real + "/miniconda/Miniconda3.sh", Checksum: "sha256:" + hex.EncodeToString(sum[:]), Where: "dockerfile_scripts/install_python.sh"}
	forge := installer
	forge.Checksum = "md5:" + hex.EncodeToString(md[:])
	ucx := Input{Kind: File, Name: real + "/ucx/ucx-1.10.1.tar.gz", Where: "dockerfile_scripts/install_mpi.sh"}
	gone := Input{Kind: File, Name: real + "/ofed/MLNX_OFED-5.4.tgz", Where: "dockerfile_scripts/install_mpi.sh"}

	rs := check(t, &Checker{Sources: src}, installer, ucx, gone)
	wantStatus(t, rs, installer, OK, "HTTP 200")
	wantStatus(t, rs, ucx, OK, "HTTP 200")
	wantStatus(t, rs, gone, Missing, "HTTP 404")

	// A server that refuses HEAD is asked for one byte.
	files.refuseHEAD = true
	rs = check(t, &Checker{Sources: src}, ucx, gone)
	wantStatus(t, rs, ucx, OK, "HTTP 206")
	wantStatus(t, rs, gone, Missing, "HTTP 404")
	files.refuseHEAD = false

	// -verify: the file changed under its URL.
	rs = check(t, &Checker{Sources: src, Verify: true}, installer, forge)
	wantStatus(t, rs, installer, OK, "sha256 matches")
	wantStatus(t, rs, forge, OK, "md5 matches")
	files.put("/miniconda/Miniconda3.sh", []byte("#!/bin/sh\necho something else\n"))
	rs = check(t, &Checker{Sources: src, Verify: true}, installer, forge)
	wantStatus(t, rs, installer, Missing, "the recipe verifies "+strings.TrimPrefix(installer.Checksum, "sha256:"))
	wantStatus(t, rs, forge, Missing, "has md5 ")
	// Without -verify only existence is asked.
	rs = check(t, &Checker{Sources: src}, installer)
	wantStatus(t, rs, installer, OK, "HTTP 200")
}

func TestCheckPip(t *testing.T) {
	idx := newPipStandin(t)
	idx.add("torch", pipFile{name: "torch-1.12.0-cp38-cp38-manylinux2014_aarch64.whl"})
	idx.add("jupyterlab", pipFile{name: "jupyterlab-3.5.3-py3-none-any.whl"}, pipFile{name: "jupyterlab-3.6.0.tar.gz"})
	idx.add("jupyterlab-server", pipFile{name: "jupyterlab_server-2.16.5-py3-none-any.whl"}, pipFile{name: "jupyterlab_server-2.19.0-py3-none-any.whl"})
	idx.add("Keras-Preprocessing", pipFile{name: "Keras_Preprocessing-1.1.2-py2.py3-none-any.whl"})
	idx.add("deepspeed", pipFile{name: "deepspeed-0.8.3.tar.gz", yanked: true}, pipFile{name: "deepspeed-0.9.0.tar.gz"})
	idx.add("pydantic", pipFile{name: "pydantic-1.10.2-py3-none-any.whl", yanked: true})
	idx.add("determined", pipFile{name: "determined-0.26.0-py3-none-any.whl"})
	idx.links["/whl/cpu/torch_stable.html"] = []pipFile{{name: "cpu/torch-1.12.0+cpu-cp38-cp38-linux_x86_64.whl"}}
	links := []string{"https://download.pytorch.org/whl/cpu/torch_stable.html"}
	src := Sources{PipIndex: idx.url + "/simple", Mirrors: []Mirror{{From: "https://download.pytorch.org", To: idx.url}}}
	pip := func(name, spec string, fl ...string) Input {
		return Input{Kind: Pip, Name: name, Version: spec, Source: PyPI, FindLinks: fl, Where: "catalog x TORCH_PIP"}
	}
	torchCPU, torchArm, torchGone := pip("torch", "==1.12.0+cpu", links...), pip("torch", "==1.12.0", links...), pip("torch", "==1.12.1+cpu", links...)
	jl, jlOld, jls := pip("jupyterlab", "~=3.5.0"), pip("jupyterlab", "~=3.4.0"), pip("jupyterlab-server", "~=2.10,<=2.16.5")
	keras, ds, dsRange := pip("Keras-Preprocessing[image]", ""), pip("deepspeed", "==0.8.3"), pip("deepspeed", "<0.9")
	pyd, nosuch, det := pip("pydantic", "<2"), pip("no-such-project", "==1.0"), pip("determined", "")

	rs := check(t, &Checker{Sources: src}, torchCPU, torchArm, torchGone, jl, jlOld, jls, keras, ds, dsRange, pyd, nosuch, det)
	wantStatus(t, rs, torchCPU, OK, "1.12.0+cpu") // on the find-links page only
	wantStatus(t, rs, torchArm, OK, "1.12.0")     // on the index
	wantStatus(t, rs, torchGone, Missing, "no file of torch==1.12.1+cpu")
	wantStatus(t, rs, jl, OK, "3.5.3")
	wantStatus(t, rs, jlOld, Missing, "no file of jupyterlab~=3.4.0")
	wantStatus(t, rs, jls, OK, "2.16.5")
	wantStatus(t, rs, keras, OK, "1.1.2") // name normalised (PEP 503)
	wantStatus(t, rs, ds, Warn, "yanked")
	wantStatus(t, rs, dsRange, Missing, "only yanked")
	wantStatus(t, rs, pyd, Missing, "only yanked")
	wantStatus(t, rs, nosuch, Missing, "no project no-such-project")
	wantStatus(t, rs, det, OK, "0.26.0")
}

func TestSatisfies(t *testing.T) {
	for _, c := range []struct {
		v, spec string
		want    bool
	}{
		{"1.12.0+cpu", "==1.12.0+cpu", true},
		{"1.12.0", "==1.12.0+cpu", false},
		{"1.12.0+cpu", "==1.12.0", true},
		{"3.5.3", "~=3.5.0", true},
		{"3.6.0", "~=3.5.0", false},
		{"3.2.0", "~=3.2", true},
		{"4.0", "~=3.2", false},
		{"2.16.5", "~=2.10,<=2.16.5", true},
		{"2.17.0", "~=2.10,<=2.16.5", false},
		{"3.20.3", "<=3.20.3", true},
		{"4.21.0", "<=3.20.3", false},
		{"8.3.2", ">=8.3.2", true},
		{"10.0.0", ">=8.3.2", true},
		{"2.0.0rc1", ">=1.0", false},
		{"2.0.0rc1", "==2.0.0rc1", true},
		{"1.0.post1", "", true},
		{"2.11.1", "==2.11.1", true},
		{"2.11.10", "==2.11.1", false},
		{"2.8.3", "==2.*", true},
	} {
		if got := satisfies(c.v, c.spec); got != c.want {
			t.Errorf("satisfies(%q, %q) = %v, want %v", c.v, c.spec, got, c.want)
		}
	}
}

func TestCheckApt(t *testing.T) {
	apt := newAptStandin(t)
	apt.add("focal", "main", "amd64", "autoconf", "2.69-11.1")
	apt.add("focal", "main", "amd64", "google-cloud-cli", "455.0.0-0")
	apt.add("focal", "universe", "amd64", "daemontools", "1:0.76-7")
	apt.add("focal", "main", "arm64", "autoconf", "2.69-11.1")
	src := mirrorTo(UbuntuArchive, apt.url)
	deb := func(name, suite, arch, version string) Input {
		return Input{Kind: Apt, Name: name, Version: version, Source: UbuntuArchive, Suite: suite, Components: ubuntuComponents,
			Arch: arch, Where: "dockerfile_scripts/install_deb_packages.sh"}
	}
	autoconf, daemontools, sdk := deb("autoconf", "focal", "amd64", ""), deb("daemontools", "focal", "amd64", ""), deb("google-cloud-sdk", "focal", "amd64", "")
	pinned, badPin := deb("autoconf", "focal", "amd64", "2.69-11.1"), deb("autoconf", "focal", "amd64", "2.71-2")
	arm, noArm := deb("autoconf", "focal", "arm64", ""), deb("daemontools", "focal", "arm64", "")
	eol := deb("autoconf", "bionic", "amd64", "")

	rs := check(t, &Checker{Sources: src}, autoconf, daemontools, sdk, pinned, badPin, arm, noArm, eol)
	wantStatus(t, rs, autoconf, OK, "main has 2.69-11.1")
	wantStatus(t, rs, daemontools, OK, "universe has")
	wantStatus(t, rs, sdk, Missing, "no package google-cloud-sdk in "+UbuntuArchive+" focal")
	wantStatus(t, rs, pinned, OK, "2.69-11.1")
	wantStatus(t, rs, badPin, Missing, "not 2.71-2")
	wantStatus(t, rs, arm, OK, "main has")
	wantStatus(t, rs, noArm, Missing, "for arm64")
	wantStatus(t, rs, eol, Missing, "has no suite bionic")
	// Each index is read once, however many packages are looked up in it.
	for path, n := range apt.gets {
		if n != 1 {
			t.Errorf("%s read %d times, want once", path, n)
		}
	}
}

func TestCheckGit(t *testing.T) {
	g := newGitStandin(t)
	first, middle := g.repo(t, "NVIDIA/nccl", "v2.15.5-1", "eleuther_dai")
	apexTip, _ := g.repo(t, "determined-ai/apex", "v0", "old")
	src := Sources{Mirrors: []Mirror{{From: "https://github.com", To: g.url}, {From: "https://git.example.org", To: g.url}}}
	git := func(repo, ref string) Input {
		return Input{Kind: Git, Name: repo, Version: ref, Where: "dockerfile_scripts/install_nccl.sh"}
	}
	tag, branch := git("https://github.com/NVIDIA/nccl.git", "v2.15.5-1"), git("https://github.com/NVIDIA/nccl.git", "eleuther_dai")
	noTag := git("https://github.com/NVIDIA/nccl.git", "v2.99.0-1")
	tip, older := git("https://github.com/determined-ai/apex.git", apexTip), git("https://github.com/NVIDIA/nccl.git", middle)
	noCommit := git("https://github.com/NVIDIA/nccl.git", strings.Repeat("ab", 20))
	elsewhere, tagged := git("https://git.example.org/NVIDIA/nccl.git", middle), git("https://git.example.org/NVIDIA/nccl.git", first)
	noRepo := git("https://github.com/NVIDIA/gone.git", "v1")

	rs := check(t, &Checker{Sources: src}, tag, branch, noTag, tip, older, noCommit, elsewhere, tagged, noRepo)
	wantStatus(t, rs, tag, OK, "refs/tags/v2.15.5-1 is "+first)
	wantStatus(t, rs, branch, OK, "refs/heads/eleuther_dai")
	wantStatus(t, rs, noTag, Missing, `no branch or tag "v2.99.0-1"`)
	wantStatus(t, rs, tip, OK, "commit is")
	wantStatus(t, rs, older, OK, "HTTP 200") // GitHub's commit page
	wantStatus(t, rs, noCommit, Missing, "no commit")
	wantStatus(t, rs, elsewhere, Warn, "cannot be looked up without a clone")
	wantStatus(t, rs, tagged, OK, "commit is refs/tags/v2.15.5-1")
	wantStatus(t, rs, noRepo, Missing, "repository is gone")

	// The tag is deleted upstream.
	if _, err := g.git("--git-dir", g.root+"/NVIDIA/nccl.git", "tag", "-d", "v2.15.5-1"); err != nil {
		t.Fatal(err)
	}
	rs = check(t, &Checker{Sources: src}, tag)
	wantStatus(t, rs, tag, Missing, `no branch or tag "v2.15.5-1"`)
}

func TestCheckConda(t *testing.T) {
	files := newFileStandin(t)
	files.put("/pkgs/main/linux-64/repodata.json", []byte(`{"info":{"subdir":"linux-64"},"packages":{`+
		`"python-3.8.12-h12debd9_0.tar.bz2":{"name":"python","version":"3.8.12"}},`+
		`"packages.conda":{"python-3.7.11-h12debd9_0.conda":{"name":"python","version":"3.7.11"}}}`))
	src := mirrorTo("https://repo.anaconda.com", files.url)
	py := func(v string) Input {
		return Input{Kind: Conda, Name: "python", Version: v, Source: condaDefaults, Where: "catalog x PYTHON_VERSION"}
	}
	rs := check(t, &Checker{Sources: src}, py("3.8.12"), py("3.7.11"), py("3.8.99"))
	wantStatus(t, rs, py("3.8.12"), OK, "3.8.12")
	wantStatus(t, rs, py("3.7.11"), OK, "3.7.11")
	wantStatus(t, rs, py("3.8.99"), Missing, "lists no python 3.8.99")
}

// TestCheckParallelBound: the questions run in parallel, never more than
// INPUTS_JOBS at once.
func TestCheckParallelBound(t *testing.T) {
	files := newFileStandin(t)
	files.delay = 30 * time.Millisecond
	var ins []Input
	for i := range 24 {
		p := "/f" + string(rune('a'+i))
		files.put(p, []byte("x"))
		ins = append(ins, Input{Kind: File, Name: files.url + p, Where: "x"})
	}
	rs := check(t, &Checker{Sources: Sources{Jobs: 4}}, ins...)
	if len(rs) != 24 {
		t.Fatalf("%d results, want 24", len(rs))
	}
	if got := files.maxInFlight.Load(); got > 4 || got < 2 {
		t.Errorf("at most %d requests in flight, want 2..4", got)
	}
}

func TestVerdictNamesEveryFailure(t *testing.T) {
	rs := []Result{
		{Input: Input{Kind: Image, Name: "nvidia/cuda:10.2"}, Images: []string{"gpu-cuda-102-base"}, Status: Missing},
		{Input: Input{Kind: Apt, Name: "google-cloud-sdk"}, Images: []string{"tf2-cpu"}, Status: Missing},
		{Input: Input{Kind: Pip, Name: "deepspeed", Version: "==0.8.3"}, Images: []string{"deepspeed-gpu"}, Status: Warn},
		{Input: Input{Kind: File, Name: "https://x"}, Images: []string{"a"}, Status: OK},
	}
	err := Verdict(rs)
	var ce *CheckError
	if !errors.As(err, &ce) || len(ce.Failed) != 2 {
		t.Fatalf("Verdict = %v, want a CheckError with 2 failures", err)
	}
	if !strings.HasPrefix(err.Error(), "2 of 4 external inputs are missing or unreachable: missing image nvidia/cuda:10.2 (gpu-cuda-102-base); missing apt google-cloud-sdk (tf2-cpu)") {
		t.Errorf("error = %q", err)
	}
	if Verdict(rs[2:]) != nil {
		t.Error("a warning alone fails the check")
	}
}

func TestParseSources(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	s, err := ParseSources(env(map[string]string{
		"INPUT_MIRRORS": "https://github.com=http://gh.mirror:8080, https://github.com/NVIDIA=http://nv.mirror",
		"PIP_INDEX_URL": "http://pypi.mirror/simple/", "INPUTS_JOBS": "4",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.URL("https://github.com/NVIDIA/nccl.git"); got != "http://nv.mirror/nccl.git" {
		t.Errorf("longest prefix: %s", got)
	}
	if got := s.URL("https://github.com/aws/x"); got != "http://gh.mirror:8080/aws/x" {
		t.Errorf("mirror: %s", got)
	}
	if got := s.pipIndex(Input{Source: PyPI}); got != "http://pypi.mirror/simple" || s.Jobs != 4 {
		t.Errorf("pip index %s, jobs %d", got, s.Jobs)
	}
	for k, v := range map[string]string{"INPUT_MIRRORS": "github.com=mirror", "PIP_INDEX_URL": "pypi.mirror", "INPUTS_JOBS": "0"} {
		_, err := ParseSources(env(map[string]string{k: v}))
		if err == nil || !strings.HasPrefix(err.Error(), k+"=") || k == "INPUT_MIRRORS" && !strings.Contains(err.Error(), `"github.com=mirror" is not PREFIX=MIRROR with two http(s) URLs`) {
			t.Errorf("%s=%s: err = %v, want one starting %s=", k, v, err, k)
		}
	}
}
