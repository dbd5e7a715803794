package variant

// How the default JOBS is chosen.
//
// JOBS bounds how many `docker buildx build`s the tool runs at once. It is
// not what keeps a real publish within memory: the memory goes to the
// builder's RUN steps, and the recipes run their memory-heavy steps (conda,
// pip of the frameworks, the compilers) under dockerfile_scripts/
// build_slot.sh, which lets only memory / (CPUs x 2 GiB) of them run side by
// side on one BuildKit daemon, counted on the builder itself (each node of a
// multi-node builder for itself), whoever started the builds. A bound on the
// tool's side could only guess the builder's memory from the machine the
// tool runs on (wrong for a remote builder), and it would hold a slot for a
// whole build while the build pulls, pushes, or waits for a slot.
//
// So by default the tool does not bound builds: JOBS is MaxJobs, and every
// image whose base is done starts at once, as `docker buildx bake` starts
// every target. Set JOBS lower to keep the builder's CPUs or network for
// other work.
const (
	MaxJobs     = 64
	DefaultJobs = MaxJobs
)
