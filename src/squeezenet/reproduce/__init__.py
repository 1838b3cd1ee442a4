"""Reproduction of the SqueezeNet paper on real data: Table 2, the design-space sweeps, the bypass table."""
