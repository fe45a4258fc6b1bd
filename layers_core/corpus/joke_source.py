"""Short programmer jokes in 13 languages from the ``pyjokes`` package, ten jokes a document.

The only non-English European text (and the only Cyrillic) of the bundled corpus, and a
small one (about 90 k characters). Code BSD-3; the jokes' own licence is CC BY-SA 3.0
(the English ones come from a Stack Overflow thread, per the package).
"""

from __future__ import annotations

import importlib

from layers_core.corpus.documents import CorpusError, Document

PYJOKES_PACKAGE = "pyjokes"
# Ten jokes (about 1,000 characters) a document: one document a language would leave only
# 13 documents, too few for a held-out split to take any.
JOKES_PER_DOCUMENT = 10


def pyjokes_documents() -> list[Document]:
    """Every joke of each language (all categories), one joke a line, in documents of ten jokes.

    Ids are ``pyjokes/<language code>/<block number from 1>``; languages sorted by code.

    Raises:
        CorpusError: The pyjokes package is not installed.
    """
    try:
        pyjokes = importlib.import_module(PYJOKES_PACKAGE)
    except ModuleNotFoundError as err:
        raise CorpusError("the bundled corpus needs the pyjokes package; run `make setup`") from err
    documents = []
    for language in sorted(pyjokes.LANGUAGE_VALUES):
        jokes = [" ".join(joke.split()) for joke in pyjokes.get_jokes(language=language, category="all")]
        unique = list(dict.fromkeys(joke for joke in jokes if joke))  # drop repeats, keep order
        kind = "english-jokes" if language == "en" else "non-english-jokes"
        for start in range(0, len(unique), JOKES_PER_DOCUMENT):
            text = "\n".join(unique[start : start + JOKES_PER_DOCUMENT])
            block = start // JOKES_PER_DOCUMENT + 1
            documents.append(Document("pyjokes", kind, f"pyjokes/{language}/{block}", text))
    return documents
