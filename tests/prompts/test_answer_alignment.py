"""Answer alignment on two real tokenizers: the tiny test BPE and the bundled SmolLM2's."""

from __future__ import annotations

import pytest
import transformers

from layers_core.errors import PromptError
from layers_core.prompts.answer_alignment import (
    align_answer,
    check_prompt,
    join_prompt_answer,
    model_context_length,
)
from tests.tiny_models import build_model, build_tokenizer

GERMANY = "The capital of Germany is"


@pytest.fixture(scope="module")
def tiny():
    return build_tokenizer()


@pytest.fixture(scope="module")
def smollm2(smollm2_tokenizer):
    """The bundled SmolLM2's tokenizer: these tests need no weights."""
    return smollm2_tokenizer


@pytest.mark.parametrize(
    ("prompt", "answer", "joined"),
    [
        ("The capital is", "Berlin", "The capital is Berlin"),
        ("The capital is ", "Berlin", "The capital is Berlin"),
        ("The capital is", " Berlin", "The capital is Berlin"),
        ("assistant\n", "Berlin", "assistant\nBerlin"),
    ],
)
def test_join_inserts_one_space_only_between_two_non_spaces(prompt, answer, joined):
    assert join_prompt_answer(prompt, answer) == joined


def test_smollm2_battery_answers_align_to_single_word_tokens(smollm2):
    cases = {
        GERMANY: ("Berlin", " Berlin"),
        "Question: What is the capital of Germany? Answer:": ("Berlin", " Berlin"),
        "Berlin is the capital of": ("Germany", " Germany"),
        "The capital of France is": ("Paris", " Paris"),
    }
    for prompt, (answer, token) in cases.items():
        result = align_answer(smollm2, prompt, answer)
        assert result.ok, result.reason
        assert result.answer_token == token
        assert result.answer_token_id == smollm2.convert_tokens_to_ids("Ġ" + answer)
        assert list(result.prompt_ids) == smollm2(prompt)["input_ids"]
        assert result.reason is None


def test_gold_token_is_not_the_answer_tokenized_alone(smollm2):
    # "Berlin" on its own is "Ber" + "lin"; after the prompt it is the single token " Berlin".
    alone = smollm2("Berlin")["input_ids"]
    result = align_answer(smollm2, GERMANY, "Berlin")
    assert len(alone) == 2
    assert result.answer_token_id not in alone


def test_trailing_space_merges_with_answer_on_both_tokenizers(tiny, smollm2):
    for tokenizer in (tiny, smollm2):
        result = align_answer(tokenizer, GERMANY + " ", "Berlin")
        assert not result.ok
        assert result.answer_token_id is None and result.answer_token is None
        assert "prompt's last token ' ' merges with the answer" in result.reason
        assert "' Berlin'" in result.reason


def test_double_newline_splits_when_answer_follows_on_smollm2(smollm2):
    # SmolLM2 reads "\n\n" as one token at the end of a prompt, but "\n" + "\nBerlin" when text follows.
    result = align_answer(smollm2, "Answer:\n\n", "Berlin")
    assert not result.ok
    assert "'\\n\\n' merges with the answer" in result.reason


def test_whitespace_only_first_token_fails_alignment(tiny, smollm2):
    # SmolLM2 splits digits off, so " 1989" is " " + "1" + ...: the next token would be the space.
    result = align_answer(smollm2, "The wall fell in", "1989")
    assert not result.ok
    assert "space before the answer" in result.reason
    # The tiny tokenizer never learned " Paris": same outcome.
    assert not align_answer(tiny, "The capital of France is", "Paris").ok


def test_answer_that_starts_with_whitespace_is_kept_as_given(smollm2):
    result = align_answer(smollm2, "Answer:", "\nBerlin")
    assert result.ok
    assert result.answer_token == "\n"


def test_tiny_tokenizer_aligns_learned_word(tiny):
    result = align_answer(tiny, GERMANY, "Berlin")
    assert result.ok
    assert result.answer_token == " Berlin"


def test_missing_or_blank_answer(tiny):
    none = align_answer(tiny, GERMANY, None)
    assert not none.ok and "no answer" in none.reason
    assert list(none.prompt_ids) == tiny(GERMANY)["input_ids"]
    blank = align_answer(tiny, GERMANY, "  ")
    assert not blank.ok and "empty" in blank.reason


def test_check_prompt_returns_ids(smollm2):
    assert check_prompt(smollm2, GERMANY, 8192) == [504, 3575, 282, 4521, 314]


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_check_prompt_rejects_empty(tiny, prompt):
    with pytest.raises(PromptError, match="empty"):
        check_prompt(tiny, prompt, 128)


def test_check_prompt_rejects_too_long_naming_both_numbers(smollm2):
    with pytest.raises(PromptError, match="is 5 tokens but the model reads at most 4"):
        check_prompt(smollm2, GERMANY, 4)
    assert len(check_prompt(smollm2, GERMANY, None)) == 5


@pytest.mark.parametrize(("family", "expected"), [("llama", 128), ("gpt2", 128), ("gemma3", 128)])
def test_model_context_length_from_real_configs(family, expected):
    assert model_context_length(build_model(family).config) == expected


def test_model_context_length_unknown():
    assert model_context_length(transformers.PretrainedConfig()) is None
