"""The lens: the one place a residual becomes logits, and the tiled layer-by-layer sweep."""
