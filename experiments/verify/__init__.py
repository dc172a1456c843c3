"""The parity ladder: forward, gradients, one step, trajectory and statistical equivalence across backends."""
