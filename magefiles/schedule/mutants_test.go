package schedule

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
)

// startOrder runs jobs with one slot and returns the order they started in.
func startOrder(t *testing.T, jobs []Job) []string {
	t.Helper()
	var mu sync.Mutex
	var order []string
	for i := range jobs {
		name := jobs[i].Name
		jobs[i].Run = func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, name)
			return nil
		}
	}
	rs, err := Run(context.Background(), jobs, 1)
	if err != nil {
		t.Fatal(err)
	}
	if AnyFailed(rs) {
		t.Fatalf("results %+v", rs)
	}
	return order
}

func TestEqualPrioritiesStartInCatalogOrder(t *testing.T) {
	got := startOrder(t, []Job{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}})
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("start order %v, want the jobs' order %v", got, want)
	}
}

func TestCostsWeighTheCriticalPath(t *testing.T) {
	// A zero cost counts as 1: the chain a -> b (1 + 1) outweighs c (1.5).
	got := startOrder(t, []Job{{Name: "c", Cost: 1.5}, {Name: "a"}, {Name: "b", Deps: []string{"a"}}})
	if got[0] != "a" {
		t.Errorf("start order %v: a zero cost must count as 1, so a (chain of 2) starts before c (1.5)", got)
	}
	// A given cost counts as given: c (3) outweighs the chain a -> b (1 + 1).
	got = startOrder(t, []Job{{Name: "a"}, {Name: "b", Deps: []string{"a"}}, {Name: "c", Cost: 3}})
	if got[0] != "c" {
		t.Errorf("start order %v: c (cost 3) must start before the chain of 2", got)
	}
}

func TestACancelledContextRunsNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	run := func(context.Context) error { ran = true; return nil }
	rs, err := Run(ctx, []Job{{Name: "a", Run: run}, {Name: "b", Deps: []string{"a"}, Run: run}, {Name: "c", Run: run, Light: true}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("a job ran with a cancelled context")
	}
	for _, r := range rs {
		if r.Name == "b" {
			if r.State != Skipped || !errors.Is(r.Err, ErrDependency) {
				t.Errorf("b: %s %v, want skipped: its dependency was cancelled", r.State, r.Err)
			}
			continue
		}
		if r.State != Cancelled || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%s: %s %v, want cancelled with context.Canceled", r.Name, r.State, r.Err)
		}
	}
}

func TestAnyFailed(t *testing.T) {
	done := []Result{{Name: "a", State: Done}, {Name: "b", State: Done}}
	if AnyFailed(done) || AnyFailed(nil) {
		t.Error("AnyFailed is true with every job done (or none)")
	}
	for _, s := range []State{Failed, Skipped, Cancelled} {
		if !AnyFailed(append(done[:1:1], Result{Name: "b", State: s})) {
			t.Errorf("AnyFailed is false with a job %s", s)
		}
	}
}
