"""Pure ``nn.Module`` building blocks: no I/O, no config parsing."""
