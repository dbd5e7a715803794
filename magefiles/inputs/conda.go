package inputs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// checkConda streams the channel's repodata.json and looks for a package
// file of the name and version ("python-3.8.12-<build>.tar.bz2" or
// ".conda"), which is how conda's index keys its packages.
func (c *Checker) checkConda(ctx context.Context, r *Result) {
	in := r.Input
	u := strings.TrimSuffix(c.Sources.URL(in.Source), "/") + "/repodata.json"
	r.Asked = u
	want := `"` + in.Name + "-" + in.Version + "-"
	found, code, err := c.streamFind(ctx, u, want)
	if err != nil || code != http.StatusOK {
		httpResult(r, code, err)
		return
	}
	if found {
		r.Status, r.Detail = OK, "the channel has "+in.Name+" "+in.Version
		return
	}
	r.Status, r.Detail = Missing, fmt.Sprintf("the channel's repodata.json lists no %s %s", in.Name, in.Version)
}

// streamFind reads u until it finds needle, without holding it all.
func (c *Checker) streamFind(ctx context.Context, u, needle string) (bool, int, error) {
	body, code, err := c.get(ctx, u)
	if err != nil || code != http.StatusOK {
		return false, code, err
	}
	defer body.Close()
	br := bufio.NewReaderSize(body, 1<<20)
	buf := make([]byte, 1<<20)
	carry := ""
	for {
		n, err := br.Read(buf)
		chunk := carry + string(buf[:n])
		if strings.Contains(chunk, needle) {
			return true, code, nil
		}
		if len(chunk) >= len(needle) {
			carry = chunk[len(chunk)-len(needle)+1:]
		} else {
			carry = chunk
		}
		if err == io.EOF {
			return false, code, nil
		}
		if err != nil {
			return false, 0, fmt.Errorf("GET %s: reading: %w", u, err)
		}
	}
}
