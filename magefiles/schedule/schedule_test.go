package schedule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDependencyOrderAndFailureStopsOnlyDependents(t *testing.T) {
	var mu sync.Mutex
	var order []string
	rec := func(name string, err error) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return err
		}
	}
	boom := errors.New("boom")
	jobs := []Job{
		{Name: "base-a", Run: rec("base-a", nil)},
		{Name: "base-b", Run: rec("base-b", nil)},
		{Name: "a1", Deps: []string{"base-a"}, Run: rec("a1", boom)},
		{Name: "a1-child", Deps: []string{"a1"}, Run: rec("a1-child", nil)},
		{Name: "b1", Deps: []string{"base-b"}, Run: rec("b1", nil)},
		{Name: "a2", Deps: []string{"base-a"}, Run: rec("a2", nil)},
	}
	rs, err := Run(context.Background(), jobs, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]State{"base-a": Done, "base-b": Done, "a1": Failed, "a1-child": Skipped, "b1": Done, "a2": Done}
	for _, r := range rs {
		if r.State != want[r.Name] {
			t.Errorf("%s: state %s, want %s (err %v)", r.Name, r.State, want[r.Name], r.Err)
		}
	}
	if !errors.Is(rs[2].Err, boom) || !errors.Is(rs[3].Err, ErrDependency) {
		t.Errorf("errors not kept: %v / %v", rs[2].Err, rs[3].Err)
	}
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	if _, ran := pos["a1-child"]; ran {
		t.Error("a dependent of a failed job ran")
	}
	if pos["a1"] < pos["base-a"] || pos["b1"] < pos["base-b"] {
		t.Errorf("order broke dependencies: %v", order)
	}
	if !AnyFailed(rs) {
		t.Error("AnyFailed = false")
	}
}

func TestParallelismIsBounded(t *testing.T) {
	var cur, peak atomic.Int32
	var jobs []Job
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		jobs = append(jobs, Job{Name: n, Run: func(context.Context) error {
			v := cur.Add(1)
			for {
				p := peak.Load()
				if v <= p || peak.CompareAndSwap(p, v) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			cur.Add(-1)
			return nil
		}})
	}
	if _, err := Run(context.Background(), jobs, 3); err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 3 {
		t.Errorf("peak parallelism %d, want 3", peak.Load())
	}
}

func TestCriticalPathStartsFirst(t *testing.T) {
	var mu sync.Mutex
	var first []string
	rec := func(n string) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			first = append(first, n)
			mu.Unlock()
			return nil
		}
	}
	// With one slot, "long" (which three jobs wait on) must start before the
	// cheap independent jobs listed ahead of it.
	jobs := []Job{
		{Name: "short1", Run: rec("short1")},
		{Name: "short2", Run: rec("short2")},
		{Name: "long", Run: rec("long"), Cost: 5},
		{Name: "x", Deps: []string{"long"}, Run: rec("x"), Cost: 5},
	}
	if _, err := Run(context.Background(), jobs, 1); err != nil {
		t.Fatal(err)
	}
	if first[0] != "long" {
		t.Errorf("start order %v, want long first", first)
	}
}

func TestCancelledContextStartsNothingNew(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	jobs := []Job{
		{Name: "a", Run: func(context.Context) error { cancel(); return nil }},
		{Name: "b", Deps: []string{"a"}, Run: func(context.Context) error { t.Error("b ran after cancel"); return nil }},
	}
	rs, err := Run(ctx, jobs, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rs[1].State != Cancelled {
		t.Errorf("b: %s, want cancelled", rs[1].State)
	}
}

func TestBadGraphsAreRejected(t *testing.T) {
	nop := func(context.Context) error { return nil }
	if _, err := Run(context.Background(), []Job{{Name: "a", Deps: []string{"nope"}, Run: nop}}, 1); err == nil {
		t.Error("unknown dependency accepted")
	}
	if _, err := Run(context.Background(), []Job{{Name: "a", Deps: []string{"b"}, Run: nop}, {Name: "b", Deps: []string{"a"}, Run: nop}}, 1); err == nil {
		t.Error("cycle accepted")
	}
}

// TestLightJobsTakeNoSlot: with one slot, the light job after "a" (a slow
// verification) runs while "b" builds, and two light jobs run at once.
// verify-a and b each wait (at most 5 s) for the other to start before they
// end: a scheduler that made one wait for the other's slot runs them one
// after the other, which the spans show; a loaded machine cannot.
func TestLightJobsTakeNoSlot(t *testing.T) {
	var mu sync.Mutex
	spans := map[string][2]time.Time{}
	started := map[string]chan struct{}{"verify-a": make(chan struct{}), "b": make(chan struct{})}
	job := func(name string, d time.Duration, until string) func(context.Context) error {
		return func(context.Context) error {
			start := time.Now()
			if ch := started[name]; ch != nil {
				close(ch)
			}
			time.Sleep(d)
			if ch := started[until]; ch != nil {
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
				}
			}
			mu.Lock()
			spans[name] = [2]time.Time{start, time.Now()}
			mu.Unlock()
			return nil
		}
	}
	jobs := []Job{
		{Name: "a", Run: job("a", 10*time.Millisecond, "")},
		{Name: "verify-a", Deps: []string{"a"}, Light: true, Run: job("verify-a", 10*time.Millisecond, "b")},
		{Name: "b", Deps: []string{"a"}, Run: job("b", 10*time.Millisecond, "verify-a")},
		{Name: "verify-b", Deps: []string{"b", "verify-a"}, Light: true, Run: job("verify-b", 10*time.Millisecond, "")},
		{Name: "c", Run: job("c", 10*time.Millisecond, "")},
	}
	rs, err := Run(context.Background(), jobs, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.State != Done {
			t.Fatalf("%s %s", r.Name, r.State)
		}
	}
	overlap := func(x, y string) bool { return spans[x][0].Before(spans[y][1]) && spans[y][0].Before(spans[x][1]) }
	if !overlap("verify-a", "b") {
		t.Errorf("verify-a %v and b %v did not overlap: a light job held the slot or waited for it", spans["verify-a"], spans["b"])
	}
	if overlap("a", "c") || overlap("b", "c") || overlap("a", "b") {
		t.Error("two heavy jobs ran at once with one slot")
	}
	if spans["verify-b"][0].Before(spans["verify-a"][1]) || spans["verify-b"][0].Before(spans["b"][1]) {
		t.Error("verify-b started before its deps finished")
	}
}
