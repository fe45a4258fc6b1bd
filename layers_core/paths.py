"""Where the repository's shared files are: its root, the shared data, the prompt templates.

The project is used from its checkout (installed in editable mode), so these are
folders of the checkout, found from this file.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Data every experiment may read: fact batteries (data/batteries/*.jsonl), corpora, datasets.
DATA_DIR = REPO_ROOT / "data"
BATTERIES_DIR = DATA_DIR / "batteries"
# The paste-ready LLM evaluation templates, one subfolder per experiment (prompts/001_layers_and_logits/).
PROMPTS_DIR = REPO_ROOT / "prompts"
