"""Results: the runner, the append-only results store and its schema, checkpoints and snapshots."""
