"""Running a sweep: the runner and its executors, preflight, the folder lock, checkpoints, snapshots, tracking."""
