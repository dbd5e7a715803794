package sign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyFile(t *testing.T) string {
	t.Helper()
	pem, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(p, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s, err := LoadSigner(keyFile(t))
	if err != nil {
		t.Fatal(err)
	}
	c := Claim{Repository: "docker.io/determinedai/environments", Digest: "sha256:" + strings.Repeat("0a", 32), Tag: "t-abc", Image: "tf2-cpu", Inputs: "sha256:in"}
	payload, err := NewPayload(c)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verifier().Verify(payload, sig); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	if got, err := ParsePayload(payload); err != nil || got != c {
		t.Errorf("payload read back %+v %v, want %+v", got, err, c)
	}
	tampered := []byte(strings.Replace(string(payload), "t-abc", "t-abd", 1))
	if s.Verifier().Verify(tampered, sig) == nil {
		t.Error("a changed payload verifies")
	}
	other, err := LoadSigner(keyFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if other.Verifier().Verify(payload, sig) == nil {
		t.Error("another key verifies")
	}
	// The public key as cosign reads it, loaded back.
	pub, err := s.Verifier().PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(p, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(p)
	if err != nil || v.Verify(payload, sig) != nil {
		t.Errorf("public key file: %v", err)
	}
}

func TestBadKeys(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":     "",
		"rsa-ish":   "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
		"encrypted": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSigner(p)
		if err == nil || !strings.HasPrefix(err.Error(), "SIGNING_KEY="+p+": ") || !strings.Contains(err.Error(), "ECDSA P-256") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadSigner(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file loads")
	}
}

func TestPayloadNeedsDigest(t *testing.T) {
	if _, err := NewPayload(Claim{Digest: "latest"}); err == nil {
		t.Error("a payload without a digest")
	}
}
