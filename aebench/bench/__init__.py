"""``aebench bench``: the performance instrument (aebench's training step vs a naive loop, FLOPs, peak, memory)."""
