// Package schedule runs jobs in dependency order with bounded parallelism.
// When a job fails, the jobs that depend on it are not started; independent
// jobs go on.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Job is one unit of work.
type Job struct {
	Name string
	Deps []string
	Run  func(ctx context.Context) error
	// Cost is the expected duration in any unit (default 1); jobs on the
	// longest remaining chain of costs start first when slots are scarce.
	Cost float64
	// Light jobs do not take one of the limit slots: they start as soon as
	// their deps are done (publish's verification and copies, which must not
	// wait behind builds nor hold builds back).
	Light bool
}

// State is how a job ended.
type State string

const (
	Done      State = "done"
	Failed    State = "failed"
	Skipped   State = "skipped"   // a dependency failed
	Cancelled State = "cancelled" // the context ended before it could start
)

// Result of one job.
type Result struct {
	Name     string
	State    State
	Err      error
	Start    time.Time
	Duration time.Duration
}

// ErrDependency marks a job skipped because a dependency did not succeed.
var ErrDependency = errors.New("dependency failed")

// Run runs the jobs, at most limit at once (Light jobs aside), each after all
// its deps are Done, and returns one result per job in the jobs' order. Unknown deps and cycles
// are errors returned before anything runs.
func Run(ctx context.Context, jobs []Job, limit int) ([]Result, error) {
	if limit < 1 {
		limit = 1
	}
	index := map[string]int{}
	for i, j := range jobs {
		if _, dup := index[j.Name]; dup {
			return nil, fmt.Errorf("schedule: job %q twice", j.Name)
		}
		index[j.Name] = i
	}
	for _, j := range jobs {
		for _, d := range j.Deps {
			if _, ok := index[d]; !ok {
				return nil, fmt.Errorf("schedule: job %q depends on unknown job %q", j.Name, d)
			}
		}
	}
	if err := checkCycles(jobs, index); err != nil {
		return nil, err
	}

	results := make([]Result, len(jobs))
	for i, j := range jobs {
		results[i].Name = j.Name
	}
	prio := priorities(jobs, index)
	type event struct {
		i   int
		err error
		at  time.Time
	}
	events := make(chan event)
	finished := make([]bool, len(jobs))
	started := make([]bool, len(jobs))
	running, heavy, remaining := 0, 0, len(jobs) // heavy: running jobs that hold a slot
	for remaining > 0 {
		// Decide every job whose dependencies are all finished.
		var ready []int
		decided := 0
		for i, j := range jobs {
			if started[i] {
				continue
			}
			allDone, anyBad := true, false
			for _, d := range j.Deps {
				k := index[d]
				if !finished[k] {
					allDone = false
				} else if results[k].State != Done {
					anyBad = true
				}
			}
			switch {
			case anyBad:
				started[i], finished[i] = true, true
				results[i].State, results[i].Err = Skipped, ErrDependency
				remaining--
				decided++
			case allDone && ctx.Err() != nil:
				started[i], finished[i] = true, true
				results[i].State, results[i].Err = Cancelled, ctx.Err()
				remaining--
				decided++
			case allDone:
				ready = append(ready, i)
			}
		}
		// Longest remaining chain first, then catalog order.
		sort.SliceStable(ready, func(a, b int) bool { return prio[ready[a]] > prio[ready[b]] })
		launched := 0
		for _, i := range ready {
			if !jobs[i].Light {
				if heavy == limit {
					continue
				}
				heavy++
			}
			started[i] = true
			running++
			launched++
			results[i].Start = time.Now()
			go func(i int) {
				err := jobs[i].Run(ctx)
				events <- event{i, err, time.Now()}
			}(i)
		}
		if launched > 0 {
			continue
		}
		if running == 0 {
			if decided > 0 {
				continue
			}
			return nil, fmt.Errorf("schedule: stuck with %d jobs", remaining)
		}
		ev := <-events
		running--
		if !jobs[ev.i].Light {
			heavy--
		}
		remaining--
		finished[ev.i] = true
		results[ev.i].Duration = ev.at.Sub(results[ev.i].Start)
		results[ev.i].State, results[ev.i].Err = Done, ev.err
		if ev.err != nil {
			results[ev.i].State = Failed
		}
	}
	return results, nil
}

// priorities gives each job the length of the longest chain of jobs that
// wait on it (weighted by Job.Cost), so the critical path starts first.
func priorities(jobs []Job, index map[string]int) []float64 {
	dependents := make([][]int, len(jobs))
	for i, j := range jobs {
		for _, d := range j.Deps {
			dependents[index[d]] = append(dependents[index[d]], i)
		}
	}
	memo := make([]float64, len(jobs))
	done := make([]bool, len(jobs))
	var walk func(i int) float64
	walk = func(i int) float64 {
		if done[i] {
			return memo[i]
		}
		best := 0.0
		for _, k := range dependents[i] {
			best = max(best, walk(k))
		}
		cost := jobs[i].Cost
		if cost <= 0 {
			cost = 1
		}
		memo[i], done[i] = cost+best, true
		return memo[i]
	}
	out := make([]float64, len(jobs))
	for i := range jobs {
		out[i] = walk(i)
	}
	return out
}

func checkCycles(jobs []Job, index map[string]int) error {
	state := make([]int, len(jobs)) // 0 new, 1 visiting, 2 done
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("schedule: dependency cycle through %q", jobs[i].Name)
		case 2:
			return nil
		}
		state[i] = 1
		for _, d := range jobs[i].Deps {
			if err := visit(index[d]); err != nil {
				return err
			}
		}
		state[i] = 2
		return nil
	}
	for i := range jobs {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

// AnyFailed reports whether any result is not Done.
func AnyFailed(rs []Result) bool {
	for _, r := range rs {
		if r.State != Done {
			return true
		}
	}
	return false
}
