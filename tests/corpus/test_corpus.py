"""The corpus: bundled sources, fingerprint, files, train/held-out split and token windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tokenizers import processors

from layers_core.corpus import (
    Corpus,
    CorpusError,
    Document,
    build_windows,
    bundled_corpus,
    load_corpus,
    split_documents,
    token_windows,
)
from layers_core.corpus.bundled_sources import BUNDLED_SOURCES, build_bundled_corpus
from layers_core.corpus.corpus_stats import source_sizes
from layers_core.corpus.token_windows import allocate_windows
from tests.tiny_models import build_tokenizer, shared_tokenizer

KINDS = {
    "web-bible": {"english-scripture"},
    "kougo-bible": {"japanese-scripture"},
    "pydoc-topics": {"english-technical"},
    "stdlib-code": {"python-code"},
    "pyjokes": {"english-jokes", "non-english-jokes"},
}


def _doc(doc_id: str, text: str, source: str = "a") -> Document:
    return Document(source=source, kind="text", doc_id=doc_id, text=text)


def _english(n_docs: int, source: str, words: int = 120) -> list[Document]:
    """Documents of plain English sentences, long enough for many small windows."""
    sentence = "The capital of Germany is Berlin and the capital of France is Paris. "
    return [_doc(f"{source}/{i}", f"Document {i}. " + sentence * (words // 12), source) for i in range(n_docs)]


# ---- bundled corpus ----------------------------------------------------------------------------


def test_bundled_corpus_has_every_source_with_nonempty_documents() -> None:
    corpus = bundled_corpus()
    assert corpus.name == "bundled"
    assert corpus.sources() == tuple(BUNDLED_SOURCES)
    ids = [doc.doc_id for doc in corpus.documents]
    assert len(ids) == len(set(ids))
    for doc in corpus.documents:
        assert doc.text.strip(), doc.doc_id
        assert doc.kind in KINDS[doc.source], doc.doc_id
        assert doc.doc_id.startswith(doc.source + "/")


def test_bundled_bibles_are_chapters_with_notes_removed() -> None:
    by_source: dict[str, list[Document]] = {}
    for doc in bundled_corpus().documents:
        by_source.setdefault(doc.source, []).append(doc)
    web, kougo = by_source["web-bible"], by_source["kougo-bible"]
    assert len(web) == len(kougo) == 1189  # chapters of the 66-book Protestant canon
    assert web[0].doc_id == "web-bible/Genesis/1"
    assert web[0].text.startswith("In the beginning God created the heavens and the earth. Now the earth")
    assert not any("{" in doc.text or "}" in doc.text for doc in web)  # translator notes stripped
    assert kougo[0].doc_id == "kougo-bible/Genesis/1"
    assert kougo[0].text.startswith("元始に神天地を創造たまへり\n")
    assert any(doc.doc_id == "stdlib-code/json/decoder.py" for doc in by_source["stdlib-code"])
    assert any(any("\u0400" <= ch <= "\u04ff" for ch in doc.text) for doc in by_source["pyjokes"])


def test_bundled_corpus_is_deterministic() -> None:
    first, second = build_bundled_corpus(), build_bundled_corpus()
    assert first == second
    assert first.fingerprint() == second.fingerprint() == bundled_corpus().fingerprint()


def test_fingerprint_changes_with_one_character_and_ignores_the_name() -> None:
    corpus = Corpus("x", tuple(_english(3, "a")))
    docs = list(corpus.documents)
    docs[1] = replace(docs[1], text=docs[1].text[:-1] + "!")
    assert Corpus("x", tuple(docs)).fingerprint() != corpus.fingerprint()
    assert Corpus("renamed", corpus.documents).fingerprint() == corpus.fingerprint()
    # Fields are length-prefixed: moving a character from the id to the text changes the hash.
    assert Corpus("x", (_doc("ab", "c"),)).fingerprint() != Corpus("x", (_doc("a", "bc"),)).fingerprint()


# ---- split -------------------------------------------------------------------------------------


def test_split_is_disjoint_covers_everything_and_keeps_order() -> None:
    corpus = bundled_corpus()
    train, heldout = split_documents(corpus, 0.1)
    train_ids = {doc.doc_id for doc in train}
    heldout_ids = {doc.doc_id for doc in heldout}
    assert not train_ids & heldout_ids
    assert train_ids | heldout_ids == {doc.doc_id for doc in corpus.documents}
    assert 0.07 < len(heldout) / len(corpus.documents) < 0.13
    order = {doc.doc_id: i for i, doc in enumerate(corpus.documents)}
    assert [order[d.doc_id] for d in train] == sorted(order[d.doc_id] for d in train)
    assert split_documents(corpus, 0.1) == (train, heldout)


def test_split_is_stable_when_documents_are_added_and_monotone_in_the_fraction() -> None:
    docs = _english(200, "a", words=12)
    train, heldout = split_documents(Corpus("x", tuple(docs)), 0.2)
    grown = [_doc("new/1", "more text"), *docs, _doc("new/2", "still more")]
    train2, heldout2 = split_documents(Corpus("x", tuple(grown)), 0.2)
    assert {d.doc_id for d in heldout} == {d.doc_id for d in heldout2} - {"new/1", "new/2"}
    assert {d.doc_id for d in train} == {d.doc_id for d in train2} - {"new/1", "new/2"}
    _, more_heldout = split_documents(Corpus("x", tuple(docs)), 0.5)
    assert {d.doc_id for d in heldout} < {d.doc_id for d in more_heldout}
    assert split_documents(Corpus("x", tuple(docs)), 0.0)[1] == []


@pytest.mark.parametrize("fraction", [-0.1, 1.0, float("nan")])
def test_split_rejects_a_bad_fraction(fraction: float) -> None:
    with pytest.raises(CorpusError, match=r"heldout_fraction must be in \[0, 1\)"):
        split_documents(Corpus("x", tuple(_english(2, "a"))), fraction)


# ---- token windows -----------------------------------------------------------------------------


def test_token_windows_shape_no_padding_shares_and_determinism() -> None:
    tokenizer = shared_tokenizer()
    docs = _english(6, "a") + _english(6, "b") + _english(6, "c")
    window, max_tokens = 16, 16 * 30 + 7
    shares = {"a": 0.5, "b": 0.3, "c": 0.2}
    result = build_windows(tokenizer, docs, window, max_tokens, shares)
    assert result.tokens.dtype == torch.long
    assert result.tokens.shape == (30, window)
    assert result.tokens.numel() <= max_tokens
    assert not (result.tokens == tokenizer.pad_token_id).any()
    assert not result.bos_prepended
    per_source = result.tokens_per_source()
    for source, share in shares.items():
        assert abs(per_source[source] - share * 30 * window) <= window, (source, per_source)
    assert len(set(zip(result.doc_ids, result.offsets, strict=True))) == 30  # no window taken twice
    again = token_windows(tokenizer, docs, window, max_tokens, shares)
    assert torch.equal(again, result.tokens)


def test_each_window_is_a_contiguous_slice_of_its_document() -> None:
    tokenizer = shared_tokenizer()
    docs = _english(4, "a") + _english(4, "b")
    texts = {doc.doc_id: doc.text for doc in docs}
    result = build_windows(tokenizer, docs, 12, 12 * 20)
    assert result.tokens_per_source() == {"a": 120, "b": 120}  # default: equal shares
    for row, doc_id, offset in zip(result.tokens.tolist(), result.doc_ids, result.offsets, strict=True):
        ids = tokenizer(texts[doc_id], add_special_tokens=False)["input_ids"]
        assert offset % 12 == 0
        assert row == ids[offset : offset + 12]
    assert len(set(result.sources[:6])) == 2  # rows interleave sources rather than run source by source


def test_bos_is_prepended_only_when_the_tokenizer_adds_it() -> None:
    tokenizer = build_tokenizer()
    bos = tokenizer.bos_token_id
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", bos)]
    )
    assert tokenizer("")["input_ids"] == [bos]
    docs = _english(3, "a")
    result = build_windows(tokenizer, docs, 10, 10 * 8)
    assert result.bos_prepended
    assert result.tokens.shape == (8, 10)
    assert (result.tokens[:, 0] == bos).all()
    assert not (result.tokens[:, 1:] == bos).any()
    texts = {doc.doc_id: doc.text for doc in docs}
    ids = tokenizer(texts[result.doc_ids[0]], add_special_tokens=False)["input_ids"]
    offset = result.offsets[0]
    assert offset % 9 == 0  # 9 text tokens a window, after the BOS
    assert result.tokens[0, 1:].tolist() == ids[offset : offset + 9]


def test_a_short_source_gives_its_remainder_to_the_others() -> None:
    tokenizer = shared_tokenizer()
    small = [_doc("small/0", "Berlin is the capital of Germany. " * 3, "small")]
    small_windows = len(tokenizer(small[0].text, add_special_tokens=False)["input_ids"]) // 8
    docs = small + _english(10, "big")
    result = build_windows(tokenizer, docs, 8, 8 * 40)
    assert result.tokens.shape == (40, 8)
    assert result.tokens_per_source() == {"small": 8 * small_windows, "big": 8 * (40 - small_windows)}


def test_a_window_holding_the_pad_id_is_dropped_not_kept() -> None:
    tokenizer = shared_tokenizer()
    text = "Berlin is the capital of Germany. <pad> Paris is the capital of France. " * 10
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.pad_token_id in ids  # the tokenizer reads "<pad>" as the pad token
    result = build_windows(tokenizer, [_doc("a/0", text)], 8, 8 * 1000)
    assert len(result.doc_ids) > 0
    assert not (result.tokens == tokenizer.pad_token_id).any()
    assert len(result.doc_ids) < len(ids) // 8


def test_token_windows_on_the_bundled_corpus() -> None:
    corpus = bundled_corpus()
    result = build_windows(shared_tokenizer(), corpus.documents, 32, 32 * 50)
    assert result.tokens.shape == (50, 32)
    assert result.tokens_per_source() == {source: 320 for source in corpus.sources()}


@pytest.mark.slow
def test_smollm2_windows_have_no_bos_and_no_pad(smollm2_tokenizer) -> None:
    corpus = bundled_corpus()
    result = build_windows(smollm2_tokenizer, corpus.documents, 64, 64 * 100)
    assert not result.bos_prepended  # SmolLM2's bos_token <|im_start|> is a chat marker it never adds
    assert result.tokens.shape == (100, 64)
    assert not (result.tokens == smollm2_tokenizer.pad_token_id).any()


def test_allocate_windows_sums_to_total_by_largest_remainder() -> None:
    assert allocate_windows(10, {"a": 1.0, "b": 1.0, "c": 1.0}) == {"a": 4, "b": 3, "c": 3}
    # exact 3.5, 1.75, 1.75: floors 3, 1, 1, and the two left go to the largest remainders
    assert allocate_windows(7, {"a": 0.5, "b": 0.25, "c": 0.25}) == {"a": 3, "b": 2, "c": 2}
    assert allocate_windows(0, {"a": 1.0}) == {"a": 0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(window=10_000, max_tokens=20_000), r"window 10000 is longer than any document \(the longest has \d+"),
        (dict(window=16, max_tokens=15), "max_tokens 15 is less than one window of 16 tokens"),
        (dict(window=0, max_tokens=15), "window 0 leaves no room for text"),
        (dict(per_source_share={"zzz": 1.0}), r"not in the documents: \['zzz'\]"),
        (dict(per_source_share={"a": 0.0}), "every source a share of 0"),
        (dict(per_source_share={"a": -1.0}), "must be >= 0"),
    ],
)
def test_token_window_errors(kwargs: dict, message: str) -> None:
    args = dict(window=16, max_tokens=160) | kwargs
    with pytest.raises(CorpusError, match=message):
        token_windows(shared_tokenizer(), _english(2, "a"), **args)


def test_token_windows_of_no_documents_is_an_error() -> None:
    with pytest.raises(CorpusError, match="no documents"):
        token_windows(shared_tokenizer(), [], 16, 160)


# ---- files -------------------------------------------------------------------------------------


def test_load_corpus_bundled_by_none_or_name() -> None:
    assert load_corpus(None) is bundled_corpus()
    assert load_corpus("bundled") is bundled_corpus()


def test_txt_documents_are_separated_by_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("First doc\nsecond line\n\n\n  \nSecond doc\r\n\r\nFirst doc\nsecond line\n\nThird\n", "utf-8")
    corpus = load_corpus(str(path))
    assert corpus.name == "notes.txt"
    assert [doc.text for doc in corpus.documents] == ["First doc\nsecond line", "Second doc", "Third"]
    assert {doc.source for doc in corpus.documents} == {"file"}
    assert all(doc.doc_id.startswith("notes.txt/") for doc in corpus.documents)
    # Ids depend on the text alone: inserting a paragraph changes no other id.
    path.write_text("New one\n\nFirst doc\nsecond line\n\nSecond doc\n\nThird\n", "utf-8")
    grown = load_corpus(str(path))
    assert {d.doc_id for d in corpus.documents} < {d.doc_id for d in grown.documents}


def test_jsonl_documents_with_optional_fields(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"text": "plain"}),
        "",
        json.dumps({"text": "named", "id": "n1", "kind": "news", "source": "wire"}),
        json.dumps({"text": "plain"}),  # an id-less repeat: kept once
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    corpus = load_corpus(str(path))
    assert corpus.name == "docs.jsonl"
    assert [(d.source, d.kind, d.text) for d in corpus.documents] == [
        ("file", "text", "plain"),
        ("wire", "news", "named"),
    ]
    assert corpus.documents[1].doc_id == "n1"
    assert corpus.documents[0].doc_id.startswith("docs.jsonl/")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "ok"', r"docs.jsonl line 2: not valid JSON"),
        ('["text"]', r"docs.jsonl line 2: expected a JSON object"),
        ('{"body": "x"}', r'docs.jsonl line 2: "text" must be a non-empty string'),
        ('{"text": "  "}', r'docs.jsonl line 2: "text" must be a non-empty string'),
        ('{"text": "x", "id": 3}', r'docs.jsonl line 2: "id" must be a non-empty string'),
        ('{"text": "x", "id": "a"}', r"docs.jsonl line 2: id 'a' was already used on line 1"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "first", "id": "a"}\n' + line + "\n", "utf-8")
    with pytest.raises(CorpusError, match=message) as caught:
        load_corpus(str(path))
    assert "\n" not in str(caught.value)


def test_load_corpus_errors(tmp_path: Path) -> None:
    accepted = r"pass 'bundled', a \.txt file"
    with pytest.raises(CorpusError, match=rf"corpus file .*missing\.txt not found; {accepted}"):
        load_corpus(str(tmp_path / "missing.txt"))
    other = tmp_path / "table.csv"
    other.write_text("a,b\n", "utf-8")
    with pytest.raises(CorpusError, match=rf"table\.csv is not a corpus file this tool reads; {accepted}"):
        load_corpus(str(other))
    with pytest.raises(CorpusError, match=rf"is a folder; {accepted}"):
        load_corpus(str(tmp_path))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n\n", "utf-8")
    with pytest.raises(CorpusError, match=r"empty\.txt holds no text"):
        load_corpus(str(empty))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"is not UTF-8 text"):
        load_corpus(str(latin1))


def test_source_sizes_count_documents_characters_and_tokens() -> None:
    tokenizer = shared_tokenizer()
    docs = [_doc("a/0", "Berlin"), _doc("a/1", "Paris is"), _doc("b/0", "Rome", "b")]
    sizes = source_sizes(Corpus("x", tuple(docs)), tokenizer)
    assert [(s.source, s.documents, s.characters) for s in sizes] == [("a", 2, 14), ("b", 1, 4)]
    expected = sum(len(tokenizer(d.text, add_special_tokens=False)["input_ids"]) for d in docs[:2])
    assert sizes[0].tokens == expected


def test_a_hub_dataset_offline_is_one_line_naming_what_works_offline(tmp_path: Path) -> None:
    # A fresh process, so HF_HUB_OFFLINE is read when the hub libraries are imported.
    code = ("from layers_core.corpus import load_corpus\nfrom layers_core.corpus.documents import CorpusError\n"
            "try:\n    load_corpus('roneneldan/TinyStories')\nexcept CorpusError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip().startswith("cannot reach the Hugging Face hub for the dataset 'roneneldan/TinyStories'")
    assert "work offline" in done.stdout and len(done.stdout.strip().splitlines()) == 1, done.stdout + done.stderr


def test_hub_rows_become_documents_from_the_text_column_once_each() -> None:
    import datasets

    from layers_core.corpus.hub_datasets import HUB_DOCUMENTS, hub_documents, text_column

    rows = datasets.Dataset.from_dict({"label": [1, 2, 3, 4], "story": ["Once.", "", "Once.", "Twice."]})
    found = hub_documents(rows, "someone--stories")
    assert [d.text for d in found] == ["Once.", "Twice."] and {d.source for d in found} == {"hub"}
    assert found[0].doc_id.startswith("someone--stories/")
    assert text_column(None, {"id": 3, "text": "a", "body": "b"}) == "text"
    with pytest.raises(CorpusError, match="no text column"):
        hub_documents([{"label": 1}], "x")
    many = ({"text": f"row {i}"} for i in range(HUB_DOCUMENTS + 10))
    assert len(hub_documents(many, "x")) == HUB_DOCUMENTS
