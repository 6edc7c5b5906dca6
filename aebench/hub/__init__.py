"""What aebench fetches from the network: host checks and pretrained weights (local files or the hub)."""
