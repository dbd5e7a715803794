package variant

import (
	"strings"
	"testing"
)

func parse(env map[string]string) (Settings, error) {
	return Parse(MapLookup(env), "0.26.4\n", "abc1234")
}

func TestDefaults(t *testing.T) {
	s, err := parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.MPI || s.OFI || !s.NGCPublish || s.DockerhubRegistry != "determinedai" || s.RegistryRepo != "environments" ||
		s.NGCRegistry != "nvcr.io/isv-ngc-partner/determined" || s.ArtifactsDir != "/tmp/artifacts" || s.Version != "0.26.4" ||
		s.Builder != DefaultBuilder || s.BuilderExplicit || s.Jobs < 1 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestNGCPublishEmptyDisablesNGC(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "1": true} {
		s, err := parse(map[string]string{"NGC_PUBLISH": v})
		if err != nil || s.NGCPublish != want {
			t.Errorf("NGC_PUBLISH=%q: %v %v", v, s.NGCPublish, err)
		}
	}
}

// Every bad input gets an error naming the value and what would be valid.
func TestBadInputIsRejectedWithTheValueAndWhatIsValid(t *testing.T) {
	cases := []struct {
		env     map[string]string
		version string
		hash    string
		want    []string
	}{
		{map[string]string{"WITH_MPI": "yes"}, "", "", []string{`WITH_MPI="yes"`, "0 or 1"}},
		{map[string]string{"WITH_NCCL": "true"}, "", "", []string{`WITH_NCCL="true"`, "0 or 1"}},
		{map[string]string{"WITH_OFI": "1"}, "", "", []string{"WITH_OFI=1 needs WITH_MPI=1"}},
		{map[string]string{"WITH_NCCL": "1"}, "", "", []string{"WITH_NCCL=1 needs WITH_MPI=1"}},
		{map[string]string{"WITH_MPI": "1", "WITH_AWS_TRACE": "1"}, "", "", []string{"WITH_AWS_TRACE=1 needs WITH_MPI=1, WITH_OFI=1 and WITH_NCCL=1"}},
		{map[string]string{"REGISTRY_REPO": "Environments"}, "", "", []string{`REGISTRY_REPO="Environments"`, "lower-case"}},
		{map[string]string{"REGISTRY_REPO": "env ironments"}, "", "", []string{`REGISTRY_REPO="env ironments"`}},
		{map[string]string{"DOCKERHUB_REGISTRY": "https://docker.io/determinedai"}, "", "", []string{`DOCKERHUB_REGISTRY="https://docker.io/determinedai"`, "no URL scheme"}},
		{map[string]string{"DOCKERHUB_REGISTRY": "my team"}, "", "", []string{`DOCKERHUB_REGISTRY="my team"`, "white space"}},
		{map[string]string{"DOCKERHUB_REGISTRY": "DeterminedAI"}, "", "", []string{`DOCKERHUB_REGISTRY="DeterminedAI"`, "lower case"}},
		{map[string]string{"NGC_REGISTRY": "nvcr.io/Team"}, "", "", []string{`NGC_REGISTRY="nvcr.io/Team"`}},
		{map[string]string{"NGC_REGISTRY": "nvcr.io/team/"}, "", "", []string{"trailing slash"}},
		{map[string]string{"NGC_PUBLISH": "yes"}, "", "", []string{`NGC_PUBLISH="yes"`}},
		{map[string]string{"JOBS": "0"}, "", "", []string{`JOBS="0"`, "1 to 64"}},
		{map[string]string{"JOBS": "many"}, "", "", []string{`JOBS="many"`}},
		{map[string]string{"CACHE": "s3"}, "", "", []string{`CACHE="s3"`, "registry"}},
		{nil, "-", "", []string{"VERSION is missing or empty"}},
		{nil, "latest", "", []string{`VERSION "latest" is not a version`}},
		{nil, "1.0 beta", "", []string{`VERSION "1.0 beta"`}},
		{nil, "", "-", []string{"commit hash", "git checkout"}},
	}
	for _, c := range cases {
		version, hash := "0.26.4", "abc1234"
		if c.version == "-" {
			version = ""
		} else if c.version != "" {
			version = c.version
		}
		if c.hash == "-" {
			hash = ""
		}
		_, err := Parse(MapLookup(c.env), version, hash)
		if err == nil {
			t.Errorf("%v version=%q hash=%q: accepted", c.env, version, hash)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", c.env, err, w)
			}
		}
	}
	t.Logf("bad inputs tried: %d, all rejected", len(cases))
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, err := parse(map[string]string{"WITH_MPI": "yes", "REGISTRY_REPO": "UP", "JOBS": "x"})
	if err == nil || strings.Count(err.Error(), "\n") < 3 {
		t.Errorf("want three problems, got %v", err)
	}
}

func TestGoodRegistrySettings(t *testing.T) {
	for _, v := range []string{"determinedai", "nvcr.io/isv-ngc-partner/determined", "127.0.0.1:5000/determinedai", "localhost:5000/a/b", "ghcr.io/org"} {
		if _, err := parse(map[string]string{"DOCKERHUB_REGISTRY": v}); err != nil {
			t.Errorf("%s rejected: %v", v, err)
		}
	}
}

func TestMatrixFlavoursAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Matrix() {
		s, err := parse(c.Env)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if seen[s.Flavour()] {
			t.Errorf("two matrix entries publish flavour %q", s.Flavour())
		}
		seen[s.Flavour()] = true
	}
}

func TestJobsDefaultsToNoBound(t *testing.T) {
	s, err := Parse(MapLookup(nil), "1.0.0", "abc1234")
	if err != nil {
		t.Fatal(err)
	}
	if s.Jobs != MaxJobs {
		t.Errorf("JOBS unset: Jobs = %d, want %d (no bound on the tool's side; the recipes' build_slot.sh bounds memory)", s.Jobs, MaxJobs)
	}
	for v, want := range map[string]int{"1": 1, "5": 5, "64": 64} {
		s, err := Parse(MapLookup(map[string]string{"JOBS": v}), "1.0.0", "abc1234")
		if err != nil || s.Jobs != want {
			t.Errorf("JOBS=%s: Jobs = %d, %v; want %d", v, s.Jobs, err, want)
		}
	}
	for _, v := range []string{"0", "65", "-1", "many"} {
		_, err := Parse(MapLookup(map[string]string{"JOBS": v}), "1.0.0", "abc1234")
		if err == nil || !strings.Contains(err.Error(), `JOBS="`+v+`"`) || !strings.Contains(err.Error(), "from 1 to 64") {
			t.Errorf("JOBS=%s: err = %v, want one naming the value and the range", v, err)
		}
	}
}

func TestReportGoesBesideArtifactsDir(t *testing.T) {
	for env, want := range map[[2]string]string{
		{"", ""}:                               "/tmp/publish-report.json",
		{"/var/ci/artifacts/", ""}:             "/var/ci/publish-report.json",
		{"artifacts", ""}:                      "publish-report.json",
		{"/tmp/artifacts", "/srv/report.json"}: "/srv/report.json",
	} {
		m := map[string]string{"ARTIFACTS_DIR": env[0], "PUBLISH_REPORT": env[1]}
		s, err := parse(m)
		if err != nil || s.Report != want {
			t.Errorf("%v: report %q (%v), want %q", m, s.Report, err, want)
		}
	}
	_, err := parse(map[string]string{"ARTIFACTS_DIR": "/tmp/a", "PUBLISH_REPORT": "/tmp/a/sub/r.json"})
	if err == nil || !strings.Contains(err.Error(), `PUBLISH_REPORT="/tmp/a/sub/r.json" is inside ARTIFACTS_DIR="/tmp/a"`) {
		t.Errorf("report inside ARTIFACTS_DIR: %v", err)
	}
	if _, err := parse(map[string]string{"ARTIFACTS_DIR": "/tmp/a", "PUBLISH_REPORT": "/tmp/ab.json"}); err != nil {
		t.Errorf("a sibling whose name starts like the directory: %v", err)
	}
}
