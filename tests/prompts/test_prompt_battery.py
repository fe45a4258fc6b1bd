"""Prompt battery, prompts files, fact batteries and chat wrapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import processors

from layers_and_logits.default_prompts import DEFAULT_BATTERY, MAIN_PROMPT_ID
from layers_core.errors import PromptError
from layers_core.prompts import prompt_battery
from layers_core.prompts.answer_alignment import align_answer
from layers_core.prompts.prompt_battery import (
    PromptCase,
    apply_chat_template,
    custom_case,
    load_fact_battery,
    load_prompts_file,
)
from tests.tiny_models import build_tokenizer


@pytest.fixture(scope="module")
def smollm2(smollm2_tokenizer):
    """The bundled SmolLM2's tokenizer: these tests need no weights."""
    return smollm2_tokenizer


def write_lines(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_default_battery_ids_roles_and_main_prompt():
    by_id = {case.prompt_id: case for case in DEFAULT_BATTERY}
    expected = ["qa", "completion", "instruction", "instruction_no_simply", "directional", "control"]
    assert list(by_id) == expected
    assert by_id[MAIN_PROMPT_ID].prompt == "The capital of Germany is"
    assert by_id["instruction_no_simply"].role == "ablation"
    assert by_id["instruction_no_simply"].prompt + " simply" == by_id["instruction"].prompt
    assert (by_id["directional"].answer, by_id["control"].answer) == ("Germany", "Paris")


def test_default_battery_aligns_on_smollm2(smollm2):
    for case in DEFAULT_BATTERY:
        assert align_answer(smollm2, case.prompt, case.answer).ok, case.prompt_id


def test_custom_case():
    assert custom_case("Hi", None) == PromptCase("custom", "Hi", None, "custom")


def test_load_prompts_file_skips_blank_lines_and_optional_answer(tmp_path):
    path = write_lines(
        tmp_path,
        '{"id": "a", "prompt": "The capital of Spain is", "answer": "Madrid"}',
        "",
        "   ",
        '{"id": "b", "prompt": "Once upon a time"}',
        '{"id": "c", "prompt": "x", "answer": null, "note": "why"}',
    )
    cases = load_prompts_file(path)
    assert cases == [
        PromptCase("a", "The capital of Spain is", "Madrid", "custom"),
        PromptCase("b", "Once upon a time", None, "custom"),
        PromptCase("c", "x", None, "custom"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "prompt": "x"', "line 2: not valid JSON"),
        ('["a", "x"]', "line 2: expected an object"),
        ('{"id": "a", "prompt": ""}', "line 2: 'prompt' must be a non-empty string"),
        ('{"prompt": "x"}', "line 2: 'id' must be a non-empty string"),
        ('{"id": "b", "prompt": "x", "answr": "y"}', "line 2: unknown field 'answr'"),
        ('{"id": "b", "prompt": "x", "answer": 5}', "line 2: 'answer' must be"),
        ('{"id": "ok", "prompt": "x"}', "line 2: id 'ok' is already used on line 1"),
    ],
)
def test_broken_line_names_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path, '{"id": "ok", "prompt": "fine"}', line)
    with pytest.raises(PromptError) as caught:
        load_prompts_file(path)
    assert str(path) in caught.value.message
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_missing_and_empty_prompts_file(tmp_path):
    with pytest.raises(PromptError, match="does not exist"):
        load_prompts_file(tmp_path / "nope.jsonl")
    with pytest.raises(PromptError, match="holds no prompts"):
        load_prompts_file(write_lines(tmp_path, "", ""))


def test_capitals_battery():
    cases = load_fact_battery("capitals")
    assert len(cases) >= 45
    assert all(case.role == "fact" and case.answer for case in cases)
    germany = next(case for case in cases if case.prompt_id == "capital_germany")
    assert (germany.prompt, germany.answer) == ("The capital of Germany is", "Berlin")
    # No answer may be contained in its own prompt (a copy would look like recall).
    assert not [case.prompt_id for case in cases if case.answer.lower() in case.prompt.lower()]


def test_capitals_battery_aligns_on_smollm2(smollm2):
    cases = load_fact_battery("capitals")
    failed = [case.prompt_id for case in cases if not align_answer(smollm2, case.prompt, case.answer).ok]
    assert failed == []


def test_unknown_battery_lists_available():
    with pytest.raises(PromptError, match="no fact battery named 'planets'; available: .*capitals"):
        load_fact_battery("planets")
    with pytest.raises(PromptError):
        load_fact_battery("../facts/capitals")


def test_capitals_file_is_plain_jsonl():
    lines = (prompt_battery.BATTERIES_DIR / "capitals.jsonl").read_text(encoding="utf-8").splitlines()
    assert all(set(json.loads(line)) == {"id", "prompt", "answer", "subject"} for line in lines)


def test_chat_template_wraps_prompt_for_assistant_reply(smollm2):
    case = DEFAULT_BATTERY[1]
    wrapped = apply_chat_template(smollm2, case)
    assert wrapped.prompt_id == case.prompt_id and wrapped.answer == case.answer
    assert "<|im_start|>user\nThe capital of Germany is<|im_end|>" in wrapped.prompt
    assert wrapped.prompt.endswith("<|im_start|>assistant\n")
    alignment = align_answer(smollm2, wrapped.prompt, wrapped.answer)
    assert alignment.ok and alignment.answer_token == "Ber"  # no space after the newline


def test_chat_template_missing_is_a_prompt_error():
    with pytest.raises(PromptError, match="no chat template"):
        apply_chat_template(build_tokenizer(), DEFAULT_BATTERY[0])


def test_chat_template_error_becomes_prompt_error():
    tokenizer = build_tokenizer()
    tokenizer.chat_template = "{{ raise_exception('system message required') }}"
    with pytest.raises(PromptError, match="system message required"):
        apply_chat_template(tokenizer, DEFAULT_BATTERY[0])


def test_chat_template_does_not_double_bos():
    # A tokenizer that adds <bos> itself, with a template that also writes it (as Gemma's does).
    tokenizer = build_tokenizer()
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tokenizer.bos_token_id)]
    )
    tokenizer.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    wrapped = apply_chat_template(tokenizer, DEFAULT_BATTERY[1])
    ids = tokenizer(wrapped.prompt)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1
    assert wrapped.prompt == "The capital of Germany is\n"


# --- subjects ----------------------------------------------------------------------------------


def test_capitals_battery_subjects_are_written_in_their_prompts():
    cases = load_fact_battery("capitals")
    assert not [case.prompt_id for case in cases if not case.subject or case.subject not in case.prompt]
    by_id = {case.prompt_id: case for case in cases}
    assert by_id["capital_germany"].subject == "Germany"
    assert by_id["capital_united_kingdom"].subject == "United Kingdom"
    # The country alone: the article belongs to the sentence, not to the subject.
    assert not [case.prompt_id for case in cases if case.subject.lower().startswith("the ")]


def test_subject_is_optional_and_read_from_the_file(tmp_path):
    path = write_lines(
        tmp_path,
        '{"id": "a", "prompt": "The capital of Spain is", "answer": "Madrid", "subject": "Spain"}',
        '{"id": "b", "prompt": "Once upon a time", "subject": null}',
    )
    assert load_prompts_file(path) == [
        PromptCase("a", "The capital of Spain is", "Madrid", "custom", "Spain"),
        PromptCase("b", "Once upon a time", None, "custom"),
    ]


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ('"France"', "line 1: the subject 'France' does not occur in the prompt"),
        ('"germany"', "line 1: the subject 'germany' does not occur in the prompt"),
        ('""', "line 1: 'subject' must be a non-empty string or left out"),
        ("7", "line 1: 'subject' must be a non-empty string or left out"),
    ],
)
def test_bad_subject_is_a_one_line_error(tmp_path, subject, message):
    path = write_lines(tmp_path, f'{{"id": "a", "prompt": "The capital of Germany is", "subject": {subject}}}')
    with pytest.raises(PromptError) as caught:
        load_prompts_file(path)
    assert str(path) in caught.value.message
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_custom_case_checks_its_subject():
    assert custom_case("The capital of Germany is", "Berlin", "Germany").subject == "Germany"
    with pytest.raises(PromptError, match="--subject: the subject 'France' does not occur in the prompt"):
        custom_case("The capital of Germany is", "Berlin", "France")
