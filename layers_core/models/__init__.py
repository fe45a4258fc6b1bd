"""Model loading: specs, bundled models, GGUF files and their cache, device policy, architecture parts."""
