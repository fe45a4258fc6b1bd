"""Write ``~`` for the user's home folder in text meant to be pasted into a hosted chat model.

The provenance of a run records local paths (a GGUF file, the cache folder);
under the home folder they carry the user name. The artefacts keep them as they
are; everything pasted elsewhere gets ``~`` instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def _home_spellings(home: Path) -> list[str]:
    """The home folder as text may hold it: as given, resolved, and JSON-escaped (Windows backslashes)."""
    forms = {str(home), str(home.resolve())}
    forms |= {json.dumps(form)[1:-1] for form in forms}
    # The filesystem root (a service account's HOME=/) or an empty name is no user folder.
    return sorted((f for f in forms if f and Path(f).parent != Path(f)), key=len, reverse=True)


def tilde_home(text: str, home: Path | None = None) -> str:
    """``text`` with the home folder written ``~`` wherever it starts a path.

    Only a whole path matches: with home ``/home/ann``, ``/home/ann/x`` becomes
    ``~/x``; ``/home/anna`` and ``/mnt/home/ann`` are left alone.

    Args:
        text: Any text.
        home: The home folder; ``Path.home()`` (``$HOME``) when None.
    """
    spellings = _home_spellings(Path.home() if home is None else home)
    if not spellings:
        return text
    pattern = re.compile(r"(?<![\w.\-/\\])(?:" + "|".join(re.escape(s) for s in spellings) + r")(?![\w.\-])")
    return pattern.sub("~", text)
