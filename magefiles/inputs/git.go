package inputs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// checkGit reads the repository's ref advertisement (smart HTTP,
// info/refs?service=git-upload-pack): a branch or tag must be among its
// refs. A commit is found when a ref points at it, else, for a GitHub
// repository, by its commit page; elsewhere only the repository is checked
// (a warning says so).
func (c *Checker) checkGit(ctx context.Context, r *Result) {
	repo := strings.TrimSuffix(r.Input.Name, "/")
	u := c.Sources.URL(repo) + "/info/refs?service=git-upload-pack"
	r.Asked = u
	refs, code, err := c.gitRefs(ctx, u)
	if err != nil || code != http.StatusOK {
		httpResult(r, code, err)
		if r.Status == Missing {
			r.Detail = "the repository is gone (" + r.Detail + ")"
		}
		return
	}
	ref := r.Input.Version
	if commitRE.MatchString(ref) {
		for name, sha := range refs {
			if sha == ref {
				r.Status, r.Detail = OK, "commit is "+name
				return
			}
		}
		owner, ok := strings.CutPrefix(strings.TrimSuffix(repo, ".git"), "https://github.com/")
		if !ok {
			r.Status, r.Detail = Warn, "the repository answers; a commit no ref points at cannot be looked up without a clone"
			return
		}
		page := c.Sources.URL("https://github.com/" + owner + "/commit/" + ref)
		r.Asked = page
		code, err := c.status(ctx, http.MethodHead, page, "")
		httpResult(r, code, err)
		if r.Status == Missing {
			r.Detail = "no commit " + ref + " in the repository (" + r.Detail + ")"
		}
		return
	}
	for _, name := range []string{ref, "refs/tags/" + ref, "refs/heads/" + ref} {
		if sha, ok := refs[name]; ok {
			r.Status, r.Detail = OK, name+" is "+sha
			return
		}
	}
	r.Status, r.Detail = Missing, fmt.Sprintf("no branch or tag %q among the repository's %d refs", ref, len(refs))
}

// gitRefs reads a smart-HTTP ref advertisement: ref name -> commit.
func (c *Checker) gitRefs(ctx context.Context, u string) (map[string]string, int, error) {
	body, code, err := c.get(ctx, u)
	if err != nil || code != http.StatusOK {
		return nil, code, err
	}
	defer body.Close()
	refs := map[string]string{}
	br := bufio.NewReader(body)
	for {
		line, err := readPktLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("GET %s: not a git ref advertisement: %w", u, err)
		}
		line, _, _ = strings.Cut(strings.TrimSuffix(line, "\n"), "\x00")
		sha, name, ok := strings.Cut(line, " ")
		if !ok || !commitRE.MatchString(sha) {
			continue // "# service=..." and flushes
		}
		name = strings.TrimSuffix(name, "^{}") // a peeled tag names its commit
		refs[name] = sha
	}
	if len(refs) == 0 {
		return nil, 0, fmt.Errorf("GET %s: no refs in the answer (not a git smart-HTTP server?)", u)
	}
	return refs, http.StatusOK, nil
}

// readPktLine reads one pkt-line; a flush packet ("0000") is "".
func readPktLine(r *bufio.Reader) (string, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", err
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad pkt-line length %q", hdr[:])
	}
	if n < 4 {
		return "", nil
	}
	buf := make([]byte, n-4)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}
