"""Training: the technique interface (Recipe), the shared loop, optimizers and schedules, losses, timing."""
