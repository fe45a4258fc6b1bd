"""English technical prose and Python code that every Python install carries (no package needed).

- ``pydoc_data.topics``: the language reference topics ``help()`` shows, one document a topic.
- A fixed list of standard-library source files, one document a file.

Both follow the running Python's version: a different Python gives slightly different text
and so a different corpus fingerprint (which is what a cache key should do).
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from layers_core.corpus.documents import CorpusError, Document

# Pure-Python files present, under these paths, in CPython 3.10 to 3.13 (about 1.7 M characters
# on 3.11). Left out on purpose: files that became packages or thin wrappers in 3.12/3.13
# (pathlib, zipfile, datetime) and generated or data-like files.
STDLIB_FILES: tuple[str, ...] = (
    "abc.py", "argparse.py", "ast.py", "bisect.py", "calendar.py", "collections/__init__.py",
    "configparser.py", "contextlib.py", "csv.py", "dataclasses.py", "difflib.py", "enum.py",
    "fnmatch.py", "fractions.py", "functools.py", "gettext.py", "glob.py", "heapq.py",
    "html/parser.py", "http/client.py", "inspect.py", "json/__init__.py", "json/decoder.py",
    "json/encoder.py", "logging/__init__.py", "pprint.py", "queue.py", "random.py", "shlex.py",
    "statistics.py", "string.py", "subprocess.py", "tarfile.py", "textwrap.py", "threading.py",
    "tokenize.py", "typing.py", "unittest/case.py", "urllib/parse.py",
)


def pydoc_topic_documents() -> list[Document]:
    """The ``help()`` topics of the running Python, sorted by topic name, one document each."""
    from pydoc_data.topics import topics

    return [
        Document("pydoc-topics", "english-technical", f"pydoc-topics/{name}", topics[name].strip())
        for name in sorted(topics)
        if topics[name].strip()
    ]


def stdlib_code_documents(files: tuple[str, ...] = STDLIB_FILES) -> list[Document]:
    """The source of each listed standard-library file, in list order.

    Raises:
        CorpusError: This Python was installed without one of the files' sources.
    """
    root = Path(sysconfig.get_path("stdlib"))
    documents = []
    for relative in files:
        path = root / relative
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as err:
            raise CorpusError(
                f"the standard-library source {path} is missing (a Python installed without sources?); "
                "use a full CPython install"
            ) from err
        documents.append(Document("stdlib-code", "python-code", f"stdlib-code/{relative}", text))
    return documents
