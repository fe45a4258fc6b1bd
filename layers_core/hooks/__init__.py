"""Hooks on the plain transformers model: residual capture, and activations read and written at named points."""
