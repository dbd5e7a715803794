//go:build e2e

package e2e

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenServer issues registry tokens the way Docker Hub's and NGC's
// token services do: GET /token?service=S&scope=repository:NAME:pull,push
// with Basic credentials (or a POST of an OAuth2 password grant) returns
// {"token": JWT, "access_token": JWT}; the JWT grants, per
// repository asked for, the asked actions this user holds there. Unknown
// users and wrong passwords get 401; no credentials get a token granting
// nothing. The registries (Debian's docker-registry with auth: token) check
// the JWT's signature against the certificate in certPath.
type tokenServer struct {
	key      *rsa.PrivateKey
	certDER  []byte
	certPath string
	issuer   string
	// users: name -> password; grants: user -> service -> repository -> actions.
	users  map[string]string
	grants map[string]map[string]map[string][]string

	mu     sync.Mutex
	issued []string // "user service repository actions" of every grant
}

func newTokenServer(t *testing.T, dir string) *tokenServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e token issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{key: key, certDER: der, issuer: "e2e-token-issuer",
		certPath: filepath.Join(dir, "token-issuer.pem"),
		users:    map[string]string{}, grants: map[string]map[string]map[string][]string{}}
	if err := os.WriteFile(ts.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return ts
}

// front is what the clients see of a registry that wants a login: one
// host:port serving the token service at /token and proxying everything
// else to the registry (Debian's docker-registry with auth: token). One
// host for both because go-containerregistry refuses a token realm on a
// private address other than the registry's own (Docker Hub's realm,
// auth.docker.io, is public). The Host header is kept, so the registry's
// upload locations name the front.
type front struct {
	srv     *httptest.Server
	mu      sync.Mutex
	backend *httputil.ReverseProxy
}

func (ts *tokenServer) newFront(t *testing.T) *front {
	t.Helper()
	f := &front{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			ts.serveToken(w, r)
			return
		}
		f.mu.Lock()
		b := f.backend
		f.mu.Unlock()
		if b == nil {
			http.Error(w, "no registry behind this front yet", http.StatusServiceUnavailable)
			return
		}
		b.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *front) host() string  { return strings.TrimPrefix(f.srv.URL, "http://") }
func (f *front) realm() string { return f.srv.URL + "/token" }

// route sends everything but /token to the registry at addr (host:port).
func (f *front) route(addr string) {
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	p.FlushInterval = -1
	f.mu.Lock()
	f.backend = p
	f.mu.Unlock()
}

// allow gives user (with password) actions on repository of service.
func (ts *tokenServer) allow(user, password, service, repository string, actions ...string) {
	ts.users[user] = password
	if ts.grants[user] == nil {
		ts.grants[user] = map[string]map[string][]string{}
	}
	if ts.grants[user][service] == nil {
		ts.grants[user][service] = map[string][]string{}
	}
	ts.grants[user][service][repository] = actions
}

func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	// GET with Basic credentials (docker, go-containerregistry), or POST of
	// an OAuth2 password grant (containerd and BuildKit: username, password,
	// scope space-separated, service in the form).
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form
	service := q.Get("service")
	scopes := q["scope"]
	user, pass, hasAuth := r.BasicAuth()
	if r.Method == http.MethodPost && r.PostForm.Get("grant_type") == "password" {
		user, pass, hasAuth = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		scopes = strings.Fields(strings.Join(r.PostForm["scope"], " "))
	}
	if hasAuth {
		if want, ok := ts.users[user]; !ok || want != pass {
			http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
			return
		}
	} else {
		user = ""
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	grants := []access{}
	for _, scope := range scopes {
		parts := strings.Split(scope, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		held := ts.grants[user][service][parts[1]]
		var got []string
		for _, a := range strings.Split(parts[2], ",") {
			if slices.Contains(held, a) {
				got = append(got, a)
			}
		}
		grants = append(grants, access{Type: "repository", Name: parts[1], Actions: got})
		ts.mu.Lock()
		ts.issued = append(ts.issued, fmt.Sprintf("%s %s %s %s", user, service, parts[1], strings.Join(got, ",")))
		ts.mu.Unlock()
	}
	now := time.Now()
	var jti [8]byte
	_, _ = rand.Read(jti[:])
	claims := map[string]any{
		"iss": ts.issuer, "sub": user, "aud": service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti[:]), "access": grants,
	}
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	tok, err := ts.sign(header, claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}

func (ts *tokenServer) sign(header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ts.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// grantsTo lists the grants issued to user on service that include action.
func (ts *tokenServer) grantsTo(user, service, action string) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []string
	for _, g := range ts.issued {
		f := strings.Fields(g)
		if len(f) == 4 && f[0] == user && f[1] == service && slices.Contains(strings.Split(f[3], ","), action) {
			out = append(out, f[2])
		}
	}
	return out
}
