"""Shared library of the tinycave experiments.

Kept free of heavy imports: `run.py` files import `layers_core.bootstrap` before
torch is known to be importable, so this package's import must not pull torch.
"""
