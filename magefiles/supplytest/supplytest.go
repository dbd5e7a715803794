// Package supplytest builds image indexes in the form BuildKit pushes them
// with attestations (buildx --provenance/--sbom, OCI artifact form): per
// platform an image and an attestation manifest whose subject is that image,
// listed in the index as platform unknown/unknown with the
// vnd.docker.reference.* annotations, holding in-toto statements (SLSA
// provenance, SPDX SBOM) as layers. Tests of package registry and publish
// use it to stand in for a real build.
package supplytest

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Package is one SBOM entry.
type Package struct{ Name, Version string }

// Options say what the index holds.
type Options struct {
	Platforms []string
	Labels    map[string]string
	// Materials are the digests the provenance names ("sha256:..."), with
	// their references.
	Materials map[string]string // ref -> digest
	Packages  []Package
	// Faults, per platform: "none" leaves the platform without attestation,
	// "subject" points its attestation at another digest, "nosbom" and
	// "noprov" leave a statement out.
	Faults map[string]string
}

// Index builds the index of o.
func Index(o Options) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range o.Platforms {
		os, arch, _ := strings.Cut(p, "/")
		img, err := random.Image(512, 2)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = os, arch
		cf.Config.Labels = o.Labels
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, err
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}})
		fault := o.Faults[p]
		if fault == "none" {
			continue
		}
		desc, err := descriptorOf(img)
		if err != nil {
			return nil, err
		}
		subject := desc.Digest
		if fault == "subject" {
			other, err := random.Image(64, 1)
			if err != nil {
				return nil, err
			}
			if subject, err = other.Digest(); err != nil {
				return nil, err
			}
		}
		att, err := attestation(o, p, v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: subject}, fault)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{
				"vnd.docker.reference.type":   "attestation-manifest",
				"vnd.docker.reference.digest": subject.String(),
			},
		}})
	}
	return mutate.AppendManifests(idx, adds...), nil
}

// Attestation is an attestation of img (platform os/arch) as BuildKit
// writes it, and the descriptor to list it in an index with.
func Attestation(img v1.Image, platform string, o Options) (v1.Image, v1.Descriptor, error) {
	desc, err := descriptorOf(img)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	att, err := attestation(o, platform, desc, "")
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return att, v1.Descriptor{
		Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{
			"vnd.docker.reference.type":   "attestation-manifest",
			"vnd.docker.reference.digest": desc.Digest.String(),
		},
	}, nil
}

func descriptorOf(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{Digest: d, Size: n, MediaType: mt}, nil
}

// attestation is BuildKit's OCI-artifact attestation manifest: empty
// config, artifactType, subject, one layer per statement.
func attestation(o Options, platform string, subject v1.Descriptor, fault string) (v1.Image, error) {
	sub := []map[string]any{{"name": "pkg:docker/stand-in?platform=" + strings.ReplaceAll(platform, "/", "%2F"),
		"digest": map[string]string{"sha256": subject.Digest.Hex}}}
	var layers []mutate.Addendum
	if fault != "noprov" {
		var mats []map[string]any
		for ref, d := range o.Materials {
			mats = append(mats, map[string]any{"uri": "pkg:docker/" + ref, "digest": map[string]string{"sha256": strings.TrimPrefix(d, "sha256:")}})
		}
		l, err := statement("https://slsa.dev/provenance/v0.2", sub, map[string]any{"builder": map[string]string{"id": ""}, "materials": mats})
		if err != nil {
			return nil, err
		}
		layers = append(layers, mutate.Addendum{Layer: l, Annotations: map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}})
	}
	if fault != "nosbom" {
		var pkgs []map[string]string
		for _, p := range o.Packages {
			pkgs = append(pkgs, map[string]string{"name": p.Name, "versionInfo": p.Version})
		}
		l, err := statement("https://spdx.dev/Document", sub, map[string]any{"spdxVersion": "SPDX-2.3", "packages": pkgs})
		if err != nil {
			return nil, err
		}
		layers = append(layers, mutate.Addendum{Layer: l, Annotations: map[string]string{"in-toto.io/predicate-type": "https://spdx.dev/Document"}})
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.oci.empty.v1+json")
	img, err := mutate.Append(img, layers...)
	if err != nil {
		return nil, err
	}
	return withSubject{Image: img, subject: subject}, nil
}

func statement(pred string, subject []map[string]any, predicate any) (v1.Layer, error) {
	b, err := json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v0.1", "predicateType": pred,
		"subject": subject, "predicate": predicate,
	})
	if err != nil {
		return nil, err
	}
	return static.NewLayer(b, "application/vnd.in-toto+json"), nil
}

// withSubject adds subject and artifactType to an image's manifest, as
// BuildKit's OCI-artifact attestations have them.
type withSubject struct {
	v1.Image
	subject v1.Descriptor
}

func (w withSubject) RawManifest() ([]byte, error) {
	m, err := w.Image.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	m.Subject = &w.subject
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	generic["artifactType"] = "application/vnd.docker.attestation.manifest.v1+json"
	return json.Marshal(generic)
}

func (w withSubject) Manifest() (*v1.Manifest, error) {
	raw, err := w.RawManifest()
	if err != nil {
		return nil, err
	}
	return v1.ParseManifest(strings.NewReader(string(raw)))
}

func (w withSubject) Digest() (v1.Hash, error) {
	raw, err := w.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(strings.NewReader(string(raw)))
	return h, err
}

func (w withSubject) Size() (int64, error) {
	raw, err := w.RawManifest()
	return int64(len(raw)), err
}

// Tags lists the tags of repo (a loopback registry), sorted.
func Tags(repo string) ([]string, error) {
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(r)
	if err != nil {
		return nil, err
	}
	slices.Sort(tags)
	return tags, nil
}
