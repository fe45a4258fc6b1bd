"""Experiment 004's code: SAE features of a model, category specialists, and how they change with depth."""
