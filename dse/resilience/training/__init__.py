"""Faults during training: hooks into the forward pass, backward pass and optimizer state, golden
runs with checkpoints, the outcome of the whole run, mitigations and campaigns."""
