"""Experiment 001's own pipeline: arguments, per-prompt analysis, fact battery, per-model run."""
