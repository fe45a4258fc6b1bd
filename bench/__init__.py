"""The performance benchmark of experiment 001 (``make bench``); see ``run_bench.py``."""
