// Package sign makes and checks cosign-compatible signatures of image
// digests with an ECDSA P-256 key, in process (crypto/ecdsa only).
//
// A signature is cosign's "simple signing" form: a JSON payload naming the
// signed manifest digest, signed with SHA-256/ECDSA (ASN.1 DER), base64 in
// the layer annotation dev.cosignproject.cosign/signature of the manifest
// tagged sha256-<hex>.sig beside the image (see package registry). This
// project adds, in the payload's "optional" part, the tag the image was
// published under, its catalog name and its inputs digest: one signature per
// tag, so a tag moved to another of this project's signed images does not
// verify (docs/supply-chain.md).
package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Names of the cosign signature format.
const (
	PayloadMediaType    = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	payloadType         = "cosign container image signature"
)

// Keys of the payload's optional part this project sets.
const (
	OptTag    = "ai.determined.environments.tag"
	OptImage  = "ai.determined.environments.image"
	OptInputs = "ai.determined.environments.inputs"
	OptBases  = "ai.determined.environments.bases"
)

// Payload is cosign's simple-signing payload.
type Payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]string `json:"optional"`
}

// Claim is what one signature says: the manifest digest, the repository it
// was signed in (cosign's docker-reference), and this project's claims.
type Claim struct {
	Repository string // e.g. docker.io/determinedai/environments
	Digest     string // sha256:...
	Tag        string // the tag name only: py-3.8-...-cpu-abc1234
	Image      string // catalog name
	Inputs     string // inputs digest
	// Bases are the images the build started from, pinned: "ref@sha256:..."
	// separated by spaces, sorted.
	Bases string
}

// NewPayload renders c as a payload.
func NewPayload(c Claim) ([]byte, error) {
	if !strings.HasPrefix(c.Digest, "sha256:") || len(c.Digest) != len("sha256:")+64 {
		return nil, fmt.Errorf("signing: %q is not a sha256 digest", c.Digest)
	}
	var p Payload
	p.Critical.Identity.DockerReference = c.Repository
	p.Critical.Image.DockerManifestDigest = c.Digest
	p.Critical.Type = payloadType
	p.Optional = map[string]string{OptTag: c.Tag, OptImage: c.Image, OptInputs: c.Inputs, OptBases: c.Bases}
	return json.Marshal(p)
}

// ParsePayload reads a payload back into a Claim.
func ParsePayload(raw []byte) (Claim, error) {
	var p Payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return Claim{}, fmt.Errorf("signature payload is not JSON: %w", err)
	}
	if p.Critical.Type != payloadType {
		return Claim{}, fmt.Errorf("signature payload has type %q, want %q", p.Critical.Type, payloadType)
	}
	return Claim{
		Repository: p.Critical.Identity.DockerReference,
		Digest:     p.Critical.Image.DockerManifestDigest,
		Tag:        p.Optional[OptTag], Image: p.Optional[OptImage], Inputs: p.Optional[OptInputs], Bases: p.Optional[OptBases],
	}, nil
}

// Signer signs payloads with a private key.
type Signer struct{ key *ecdsa.PrivateKey }

// Sign returns the base64 signature of payload (SHA-256, ECDSA, ASN.1 DER),
// as cosign stores it.
func (s Signer) Sign(payload []byte) (string, error) {
	h := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, h[:])
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verifier returns the verifier of s's public key.
func (s Signer) Verifier() Verifier { return Verifier{key: &s.key.PublicKey} }

// Verifier checks signatures with a public key.
type Verifier struct{ key *ecdsa.PublicKey }

// Verify checks that sigB64 is a signature of payload by v's key.
func (v Verifier) Verify(payload []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	h := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(v.key, h[:], sig) {
		return errors.New("signature does not verify with the public key")
	}
	return nil
}

// PublicPEM is the PEM "PUBLIC KEY" (PKIX) of v, what `cosign verify --key`
// reads.
func (v Verifier) PublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(v.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// GenerateKey returns a new P-256 key as an unencrypted PKCS#8 PEM (for
// tests and for `openssl`-less set-ups).
func GenerateKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadSigner reads an unencrypted ECDSA P-256 private key, PEM "PRIVATE
// KEY" (PKCS#8) or "EC PRIVATE KEY" (SEC 1), from path.
func LoadSigner(path string) (Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Signer{}, fmt.Errorf("SIGNING_KEY=%s: %w", path, err)
	}
	k, err := ParsePrivateKey(raw)
	if err != nil {
		return Signer{}, fmt.Errorf("SIGNING_KEY=%s: %w", path, err)
	}
	return Signer{key: k}, nil
}

// ParsePrivateKey parses a PEM private key (see LoadSigner).
func ParsePrivateKey(raw []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(raw)
	if b == nil {
		return nil, errors.New("no PEM block: want an unencrypted ECDSA P-256 key, PEM \"PRIVATE KEY\" (PKCS#8) or \"EC PRIVATE KEY\"")
	}
	var key crypto.PrivateKey
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want an unencrypted ECDSA P-256 key, \"PRIVATE KEY\" (PKCS#8) or \"EC PRIVATE KEY\" (cosign's encrypted keys: export the key unencrypted, or use keyless signing)", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing the private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the key is not an ECDSA P-256 key")
	}
	return ec, nil
}

// LoadVerifier reads a public key (PEM "PUBLIC KEY") or, when path holds a
// private key, its public half.
func LoadVerifier(path string) (Verifier, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Verifier{}, err
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		return Verifier{}, fmt.Errorf("%s: no PEM block: want a \"PUBLIC KEY\" (as `cosign generate-key-pair` writes cosign.pub) or a private key", path)
	}
	if b.Type != "PUBLIC KEY" {
		k, err := ParsePrivateKey(raw)
		if err != nil {
			return Verifier{}, fmt.Errorf("%s: %w", path, err)
		}
		return Verifier{key: &k.PublicKey}, nil
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return Verifier{}, fmt.Errorf("%s: parsing the public key: %w", path, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return Verifier{}, fmt.Errorf("%s: not an ECDSA P-256 public key", path)
	}
	return Verifier{key: ec}, nil
}
