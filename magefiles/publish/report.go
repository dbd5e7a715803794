package publish

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/variant"
)

// ReportName is the file name of the publish report. The report goes to
// PUBLISH_REPORT (Settings.Report; default publish-report.json beside
// ARTIFACTS_DIR), never into ARTIFACTS_DIR: CI stores that directory whole and
// Determined's release tooling would read the report as a bump file.
const ReportName = variant.ReportName

// Result is how one image's publish ended.
type Result string

const (
	Built    Result = "built"      // built, pushed and verified
	UpToDate Result = "up-to-date" // already published from the same inputs; verified, not rebuilt
	// Reused: an image with the same inputs was found (at the <name>-<version>
	// tag) and verified, and the missing tags were pointed at it by registry
	// API: no build, no blob upload.
	Reused    Result = "reused"
	Failed    Result = "failed"    // its build, verification, copy or artifact failed
	Skipped   Result = "skipped"   // its base image was not published
	Cancelled Result = "cancelled" // interrupted (SIGINT, timeout) before it finished
	// DryRun is the result of every image of a dry run (whose report is
	// returned, never written).
	DryRun Result = "dry-run"
)

// Report is what a publish did; it is written to PUBLISH_REPORT (default
// publish-report.json beside ARTIFACTS_DIR) even when images fail.
type Report struct {
	Settings        ReportSettings `json:"settings"`
	Started         time.Time      `json:"started"`
	DurationSeconds float64        `json:"duration_seconds"`
	// OK is true when every image was published and verified.
	OK     bool          `json:"ok"`
	Images []ImageReport `json:"images"`
}

// ReportSettings summarises the variant the images were published under.
type ReportSettings struct {
	Flavour       string `json:"flavour"` // "", "mpi" or "mpi-ofi"
	MPIDigit      string `json:"mpi_digit"`
	Hash          string `json:"hash"`
	Version       string `json:"version"`
	DockerhubRepo string `json:"dockerhub_repo"`
	NGCRepo       string `json:"ngc_repo,omitempty"` // "" when NGC is not published to
	Force         bool   `json:"force"`
	AllowDirty    bool   `json:"allow_dirty"`
}

// ImageReport is one image of the report.
type ImageReport struct {
	Name   string `json:"name"`
	Result Result `json:"result"`
	Error  string `json:"error,omitempty"`
	// Digest is the manifest (list) digest both Docker Hub tags point at; ""
	// when unknown.
	Digest    string     `json:"digest,omitempty"`
	Platforms []string   `json:"platforms"`
	Tags      ReportTags `json:"tags"`
	// Verified is true when every tag of the image (Docker Hub, and NGC for
	// NGC images) was checked to point at Digest with Platforms.
	Verified         bool      `json:"verified"`
	NGCCopied        bool      `json:"ngc_copied"`
	NGCBytesUploaded int64     `json:"ngc_bytes_uploaded"`
	Started          time.Time `json:"started,omitzero"`
	DurationSeconds  float64   `json:"duration_seconds"`
	// Artifact is the artifact file name (in ARTIFACTS_DIR) written for this
	// image; "" when none was (base images, failures).
	Artifact string `json:"artifact,omitempty"`
	// Inputs are the image's build inputs; nil when it did not get that far.
	Inputs *ReportInputs `json:"inputs,omitempty"`
}

// ReportInputs are what an image was published from: its inputs digest (the
// plan.InputsLabel label) and the digests of the images it was built FROM.
type ReportInputs struct {
	Digest string `json:"digest"`
	// Images maps each image the build starts from (the base image's hashed
	// tag, external images such as ubuntu:20.04) to its digest.
	Images map[string]string `json:"images,omitempty"`
}

// ReportTags are the tags an image is published under.
type ReportTags struct {
	Dockerhub []string `json:"dockerhub"`
	NGC       []string `json:"ngc"`
}

func reportSettings(s variant.Settings, ngc bool) ReportSettings {
	rs := ReportSettings{
		Flavour: s.Flavour(), MPIDigit: s.MPIDigit(), Hash: s.Hash, Version: s.Version,
		DockerhubRepo: plan.DockerhubRepo(s), Force: s.Force, AllowDirty: s.AllowDirty,
	}
	if ngc {
		rs.NGCRepo = plan.NGCRepo(s)
	}
	return rs
}

// write stores the report atomically at path.
func (r *Report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the publish report: %w", err)
	}
	return writeAtomic(filepath.Dir(path), filepath.Base(path), append(b, '\n'))
}
