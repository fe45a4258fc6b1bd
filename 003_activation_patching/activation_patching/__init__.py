"""Experiment 003's own analysis: which layer and which position carry the fact, tested by intervention."""
