"""A run of an experiment: shared flags, the per-model loop, run folders, provenance, artefact files."""
