"""A corpus from a Hugging Face dataset id (``owner/name`` or ``owner/name:config``), read online.

The dataset's ``train`` split is streamed, so nothing but the rows read is downloaded,
and read up to ``HUB_DOCUMENTS`` rows or ``HUB_CHARACTERS`` characters, in the
dataset's own order (the same rows on every run while the dataset is unchanged). The
text is the ``text`` column, or the dataset's first string column when it has none.
Each non-empty row is one document, source "hub", kind "text", with a content id as
``corpus_files`` gives (so a row's train/held-out side depends only on its text).
Offline, without the ``datasets`` package, or for an unknown, private or gated
dataset, ``CorpusError`` says which and what to pass instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from layers_core.corpus.documents import Corpus, CorpusError, Document, make_corpus

HUB_DOCUMENTS = 50_000
HUB_CHARACTERS = 20_000_000
TEXT_COLUMN = "text"


def _content_id(name: str, text: str) -> str:
    from layers_core.corpus.corpus_files import content_id

    return content_id(name, text)


def text_column(features: Mapping[str, Any] | None, first_row: Mapping[str, Any]) -> str:
    """The column read: ``text`` when there is one, else the first column holding strings.

    Raises:
        CorpusError: No column holds strings.
    """
    names = list(features) if features else list(first_row)
    if TEXT_COLUMN in names:
        return TEXT_COLUMN
    for name in names:
        if isinstance(first_row.get(name), str):
            return name
    raise CorpusError(f"the dataset has no text column (columns: {', '.join(names) or 'none'})")


def hub_documents(rows: Iterable[Mapping[str, Any]], name: str, column: str | None = None) -> list[Document]:
    """Documents from a dataset's rows (module doc): at most ``HUB_DOCUMENTS`` rows or ``HUB_CHARACTERS`` characters."""
    found: dict[str, Document] = {}
    characters = 0
    for index, row in enumerate(rows):
        if index >= HUB_DOCUMENTS or characters >= HUB_CHARACTERS:
            break
        column = column or text_column(None, row)
        text = row.get(column)
        if not isinstance(text, str) or not text.strip():
            continue
        document = Document("hub", "text", _content_id(name, text), text)
        found.setdefault(document.doc_id, document)
        characters += len(text)
    return list(found.values())


def hub_corpus(spec: str) -> Corpus:
    """The corpus of the dataset ``spec`` names (``owner/name`` or ``owner/name:config``).

    Raises:
        CorpusError: No ``datasets`` package, no network, an unknown, private or gated dataset, no text.
    """
    dataset_id, _, config = spec.partition(":")
    try:
        import datasets
    except ImportError as err:
        raise CorpusError(f"reading the dataset {spec!r} needs the 'datasets' package (pip install datasets)") from err
    try:
        stream = datasets.load_dataset(dataset_id, config or None, split="train", streaming=True)
        documents = hub_documents(stream, dataset_id.replace("/", "--"))
    except ConnectionError as err:
        raise CorpusError(
            f"cannot reach the Hugging Face hub for the dataset {spec!r} (offline?); the bundled corpus and "
            ".txt/.jsonl files work offline"
        ) from err
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CorpusError(f"cannot read the dataset {spec!r} from the Hugging Face hub: {first} (a gated or "
                          "private dataset needs HF_TOKEN set and its terms accepted)") from err
    if not documents:
        raise CorpusError(f"the dataset {spec!r} holds no text in its train split")
    return make_corpus(spec, documents)
