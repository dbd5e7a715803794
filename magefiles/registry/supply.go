package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The supply-chain records of an image (docs/supply-chain.md): BuildKit's
// attestation manifests inside the image index (one per platform, in-toto
// statements as layers), and cosign signatures in the manifest tagged
// sha256-<hex>.sig in the image's repository.

const (
	annotationReferenceDigest = "vnd.docker.reference.digest"
	// InTotoMediaType is the media type of an attestation layer.
	InTotoMediaType = "application/vnd.in-toto+json"
	// maxStatement bounds what is read of one attestation layer (BuildKit
	// refuses attestations over 40 MiB).
	maxStatement = 64 << 20
)

// Supply is what an image index holds besides its platform images.
type Supply struct {
	Digest string
	// Platforms maps each platform ("linux/amd64") to its manifest digest.
	Platforms map[string]string
	// Attestations are the attestation manifests of the index.
	Attestations []Attestation
}

// Attestation is one attestation manifest.
type Attestation struct {
	Digest string // of the attestation manifest
	// RefDigest is the index's vnd.docker.reference.digest annotation, the
	// platform manifest it attests; Subject the manifest's OCI subject
	// ("" for BuildKit's older form without one).
	RefDigest, Subject string
	Statements         []Statement
	Bytes              int64 // manifest and layers
}

// Statement is one in-toto statement of an attestation.
type Statement struct {
	PredicateType string
	// Subjects are the sha256 digests the statement names ("sha256:...").
	Subjects  []string
	Predicate json.RawMessage
	Bytes     int // of the layer
}

type statementJSON struct {
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// ReadSupply reads the attestations of the index ref points at (ref may be
// pinned by digest): every attestation manifest and its statements.
func (c *Client) ReadSupply(ctx context.Context, ref string) (Supply, error) {
	r, err := parseRef(ref)
	if err != nil {
		return Supply{}, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, _, err := c.shared()
	if err != nil {
		return Supply{}, err
	}
	desc, err := getManifest(ctx, p, r)
	if err != nil {
		return Supply{}, hostErr("reading the attestations of", r, withCause(ctx, err))
	}
	s := Supply{Digest: desc.Digest.String(), Platforms: map[string]string{}}
	if !desc.MediaType.IsIndex() {
		return s, fmt.Errorf("%w: %s is a single image (%s), not an index: it has no room for attestations", ErrVerify, ref, desc.MediaType)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return s, hostErr("reading the attestations of", r, contentErr("reading index", err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return s, hostErr("reading the attestations of", r, contentErr("parsing index", err))
	}
	for _, d := range im.Manifests {
		if !isAttestation(d) {
			if d.Platform != nil {
				s.Platforms[platformString(d.Platform, nil)] = d.Digest.String()
			}
			continue
		}
		a, err := readAttestation(ctx, idx, d)
		if err != nil {
			return s, hostErr("reading the attestations of", r, withCause(ctx, err))
		}
		s.Attestations = append(s.Attestations, a)
	}
	return s, nil
}

func readAttestation(ctx context.Context, idx v1.ImageIndex, d v1.Descriptor) (Attestation, error) {
	a := Attestation{Digest: d.Digest.String(), RefDigest: d.Annotations[annotationReferenceDigest], Bytes: d.Size}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return a, contentErr("reading attestation "+a.Digest, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return a, contentErr("reading attestation "+a.Digest, err)
	}
	var m struct {
		Subject *v1.Descriptor  `json:"subject"`
		Layers  []v1.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return a, contentErr("parsing attestation "+a.Digest, err)
	}
	if m.Subject != nil {
		a.Subject = m.Subject.Digest.String()
	}
	for _, l := range m.Layers {
		if ctx.Err() != nil {
			return a, ctx.Err()
		}
		if l.MediaType != InTotoMediaType {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return a, contentErr("reading attestation layer "+l.Digest.String(), err)
		}
		rc, err := layer.Compressed() // stored as is: plain JSON
		if err != nil {
			return a, contentErr("reading attestation layer "+l.Digest.String(), err)
		}
		body, err := io.ReadAll(io.LimitReader(rc, maxStatement))
		rc.Close()
		if err != nil {
			return a, contentErr("reading attestation layer "+l.Digest.String(), err)
		}
		a.Bytes += int64(len(body))
		var st statementJSON
		if err := json.Unmarshal(body, &st); err != nil {
			return a, fmt.Errorf("%w: attestation layer %s is not an in-toto statement: %w", ErrVerify, l.Digest, err)
		}
		out := Statement{PredicateType: st.PredicateType, Predicate: st.Predicate, Bytes: len(body)}
		for _, sub := range st.Subject {
			if h := sub.Digest["sha256"]; h != "" {
				out.Subjects = append(out.Subjects, "sha256:"+h)
			}
		}
		a.Statements = append(a.Statements, out)
	}
	return a, nil
}

// Signature is one cosign signature: the payload and its base64 signature.
type Signature struct {
	Payload   []byte
	Signature string
}

// SignatureTag is cosign's tag for the signatures of digest:
// sha256:<hex> -> sha256-<hex>.sig.
func SignatureTag(digest string) string {
	return strings.Replace(digest, ":", "-", 1) + ".sig"
}

const (
	sigPayloadMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	sigAnnotation       = "dev.cosignproject.cosign/signature"
)

// Signatures reads the signatures of repo@digest from repo:sha256-<hex>.sig
// (none: an empty list and no error).
func (c *Client) Signatures(ctx context.Context, repo, digest string) ([]Signature, error) {
	r, err := parseRef(repo + ":" + SignatureTag(digest))
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, _, err := c.shared()
	if err != nil {
		return nil, err
	}
	desc, err := getManifest(ctx, p, r)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, hostErr("reading the signatures at", r, withCause(ctx, err))
	}
	img, err := desc.Image()
	if err != nil {
		return nil, hostErr("reading the signatures at", r, contentErr("reading manifest", err))
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, hostErr("reading the signatures at", r, contentErr("reading manifest", err))
	}
	var out []Signature
	for _, l := range m.Layers {
		if l.MediaType != sigPayloadMediaType {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, hostErr("reading the signatures at", r, contentErr("payload "+l.Digest.String(), err))
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, hostErr("reading the signatures at", r, contentErr("payload "+l.Digest.String(), err))
		}
		body, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			return nil, hostErr("reading the signatures at", r, contentErr("payload "+l.Digest.String(), err))
		}
		out = append(out, Signature{Payload: body, Signature: l.Annotations[sigAnnotation]})
	}
	return out, nil
}

// AddSignatures adds sigs to the signatures of repo@digest: the manifest at
// repo:sha256-<hex>.sig is written again with the signatures it held plus
// the new ones (a payload already there with the same signature is not
// added twice). It is a read-modify-write: two processes signing the same
// digest at once could lose one's signatures. CI jobs that share a base
// image each publish it, and may sign it at the same time; a write the
// registry refuses as racing (race.go) is done again from a fresh read.
func (c *Client) AddSignatures(ctx context.Context, repo, digest string, sigs []Signature) error {
	delays := raceDelays(c.initial)
	for attempt := 1; ; attempt++ {
		err := c.addSignaturesOnce(ctx, repo, digest, sigs)
		if err == nil || !writeRace(err) || ctx.Err() != nil || attempt == raceAttempts {
			return err
		}
		if sleepCtx(ctx, jitter(delays[attempt-1], rand.N[time.Duration])) != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) addSignaturesOnce(ctx context.Context, repo, digest string, sigs []Signature) error {
	old, err := c.Signatures(ctx, repo, digest)
	if err != nil {
		return err
	}
	r, err := parseRef(repo + ":" + SignatureTag(digest))
	if err != nil {
		return err
	}
	all := append([]Signature(nil), old...)
	for _, s := range sigs {
		dup := false
		for _, o := range old {
			dup = dup || (bytes.Equal(o.Payload, s.Payload) && o.Signature == s.Signature)
		}
		if !dup {
			all = append(all, s)
		}
	}
	if len(all) == len(old) {
		return nil
	}
	img, err := signatureImage(all)
	if err != nil {
		return err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	_, pusher, err := c.shared()
	if err != nil {
		return err
	}
	if err := pusher.Push(ctx, r, img); err != nil {
		return hostErr("writing signatures to", r, withCause(ctx, err))
	}
	return nil
}

// CopySignatures copies the signature manifest of digest from srcRepo to
// dstRepo (same tag), digest-preserving.
func (c *Client) CopySignatures(ctx context.Context, srcRepo, dstRepo, digest string) error {
	tag := SignatureTag(digest)
	d, err := c.Resolve(ctx, srcRepo+":"+tag)
	if err != nil {
		return fmt.Errorf("copying the signatures of %s: %w", digest, err)
	}
	if _, err := c.Copy(ctx, srcRepo+"@"+d, []string{dstRepo + ":" + tag}); err != nil {
		return fmt.Errorf("copying the signatures of %s: %w", digest, err)
	}
	return nil
}

// noReferrersFallback answers go-containerregistry's probe of the OCI
// referrers API (GET /v2/<repo>/referrers/<digest>) itself, with an empty
// list, so that a push of a manifest with a subject (BuildKit's attestation
// manifests) never writes the referrers fallback tag sha256-<digest> into
// the destination: read-modify-write indexes under tags that are not the
// contract's. The attestations stay reachable from their image index (the
// vnd.docker.reference.digest annotation), which is how buildx and docker
// find them; signatures use cosign's .sig tag. Only Copy's writes use it.
type noReferrersFallback struct{ inner http.RoundTripper }

const emptyReferrers = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`

func (t noReferrersFallback) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/v2/") && strings.Contains(req.URL.Path, "/referrers/") {
		if req.Body != nil {
			req.Body.Close()
		}
		return &http.Response{
			StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": []string{"application/vnd.oci.image.index.v1+json"}},
			Body:          io.NopCloser(strings.NewReader(emptyReferrers)),
			ContentLength: int64(len(emptyReferrers)),
			Request:       req,
		}, nil
	}
	return t.inner.RoundTrip(req)
}

// signatureImage is the cosign signature manifest holding sigs: an OCI
// manifest, one payload layer per signature.
func signatureImage(sigs []Signature) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(sigs))
	for i, s := range sigs {
		adds[i] = mutate.Addendum{
			Layer:       static.NewLayer(s.Payload, sigPayloadMediaType),
			Annotations: map[string]string{sigAnnotation: s.Signature},
		}
	}
	out, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("making the signature manifest: %w", err)
	}
	return out, nil
}
