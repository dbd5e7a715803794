package targets

import (
	"context"
	encjson "encoding/json"
	"os"
	"time"

	"github.com/determined-ai/environments/magefiles/inputs"
)

// Inputs lists every image's external inputs: the images a stage starts
// from, downloaded files with the checksums the recipes verify, git refs,
// pip and apt pins with the index or repository each comes from, and conda
// packages (see docs/inputs.md). With -check it asks each source whether
// every input still exists (registry HEAD, HTTP HEAD, the pip simple index,
// the apt Packages index, the conda channel), in parallel, names every one
// that does not, and fails; -verify also downloads each file whose checksum
// the recipes verify and compares it; -json prints JSON; -image=NAME keeps
// one image and its base. Reads REGISTRY_MIRRORS, INPUT_MIRRORS,
// PIP_INDEX_URL, INPUTS_JOBS.
func Inputs(ctx context.Context,
	check *bool, // ask every source whether each input still exists
	json *bool, // print JSON instead of text
	verify *bool, // with -check: download the files with a declared checksum and compare
	image *string, // only this catalog image and its base
) error {
	imgs, err := inputs.All()
	if err != nil {
		return err
	}
	if image != nil && *image != "" {
		if imgs, err = inputs.Only(imgs, *image); err != nil {
			return err
		}
	}
	asJSON := json != nil && *json
	if check == nil || !*check {
		if asJSON {
			return writeJSON(imgs)
		}
		return inputs.WriteList(os.Stdout, imgs)
	}
	src, err := inputs.ParseSources(os.LookupEnv)
	if err != nil {
		return err
	}
	e, err := load(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := withCleanupTime(ctx)
	defer cancel()
	start := time.Now()
	results := inputs.NewChecker(e.Settings.Mirrors, src, verify != nil && *verify).Check(ctx, imgs)
	if asJSON {
		if err := writeJSON(results); err != nil {
			return err
		}
	} else if err := inputs.WriteResults(os.Stdout, results, time.Since(start), false); err != nil {
		return err
	}
	return inputs.Verdict(results)
}

func writeJSON(v any) error {
	enc := encjson.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
