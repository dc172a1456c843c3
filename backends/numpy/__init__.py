"""NumPy float64 reference: hand-written forward (and, later, backward) used as the oracle."""
