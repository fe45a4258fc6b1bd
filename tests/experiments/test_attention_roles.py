"""002's attention by token role: roles hand-checked, masses against an independent eager forward, every family."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import transformers
from tokenizers import processors

from attention_and_attribution import token_roles as token_roles_module
from attention_and_attribution.attention_roles import HeadAttention, attention_by_role, attention_by_role_batched
from attention_and_attribution.token_roles import ROLES, token_roles
from layers_core.errors import PromptError
from layers_core.models.architecture import ModelParts, model_parts
from layers_core.prompts.batching import left_padded
from tests import tiny_models
from tests.tolerances import bits, fp32_tol, max_abs

PROMPT = "The capital of Germany is"
# Longer than the tiny models' sliding window (16 tokens): position 0 is outside it at the last position.
LONG_PROMPT = "Madrid, Rome, Vienna, Warsaw, Lisbon and Athens are capitals in Europe. The capital of Germany is"
QA_PROMPT = "Question: What is the capital of Germany? Answer:"
WINDOW = 16


@pytest.fixture(scope="module")
def tiny_tokenizer() -> transformers.PreTrainedTokenizerFast:
    return tiny_models.build_tokenizer()


def _tokens(tokenizer, text: str) -> list[str]:
    return [tokenizer.decode([i]) for i in tokenizer(text)["input_ids"]]


def _roles(tokenizer, text: str, subject: str | None) -> list[str]:
    return list(token_roles(tokenizer, text, tokenizer(text)["input_ids"], subject))


# --- roles, checked by hand ----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["smollm2", "tiny"])
def test_roles_of_the_capital_prompt(which, request, tiny_tokenizer):
    tokenizer = request.getfixturevalue("smollm2_tokenizer") if which == "smollm2" else tiny_tokenizer
    assert _tokens(tokenizer, PROMPT) == ["The", " capital", " of", " Germany", " is"]
    assert _roles(tokenizer, PROMPT, "Germany") == ["first", "relation", "relation", "subject", "self"]
    assert _roles(tokenizer, PROMPT, None) == ["first", "relation", "relation", "relation", "self"]


@pytest.mark.parametrize("which", ["smollm2", "tiny"])
def test_multi_token_subject(which, request, tiny_tokenizer):
    tokenizer = request.getfixturevalue("smollm2_tokenizer") if which == "smollm2" else tiny_tokenizer
    text = "The capital of the United Kingdom is"
    tokens, roles = _tokens(tokenizer, text), _roles(tokenizer, text, "United Kingdom")
    assert tokens[:4] == ["The", " capital", " of", " the"] and tokens[-1] == " is"
    assert roles[:4] == ["first", "relation", "relation", "relation"] and roles[-1] == "self"
    at = [position for position, role in enumerate(roles) if role == "subject"]
    assert len(at) >= 2 and at == list(range(at[0], len(roles) - 1))
    assert "".join(tokens[position] for position in at).strip() == "United Kingdom"
    # The tiny tokenizer writes " United" as " " + "U" + ...: that bare space is not the subject's.
    assert all(roles[position] == "punct" and not tokens[position].strip() for position in range(4, at[0]))


def test_punctuation_and_digits_on_smollm2(smollm2_tokenizer):
    tokens = _tokens(smollm2_tokenizer, QA_PROMPT)
    assert tokens == ["Question", ":", " What", " is", " the", " capital", " of", " Germany", "?", " Answer", ":"]
    assert _roles(smollm2_tokenizer, QA_PROMPT, "Germany") == [
        "first", "punct", "relation", "relation", "relation", "relation", "relation", "subject", "punct",
        "relation", "self",
    ]
    text = "In 1990, the capital of Germany was"
    roles = dict(zip(_tokens(smollm2_tokenizer, text), _roles(smollm2_tokenizer, text, "Germany"), strict=True))
    digits = [token for token in roles if token.strip().isdigit()]
    assert digits and all(roles[token] == "other" for token in digits)
    assert roles[","] == "punct" and roles[" Germany"] == "subject"


def test_chat_template_markers_are_punct(smollm2_tokenizer):
    messages = [{"role": "user", "content": PROMPT}]
    text = str(smollm2_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    ids = smollm2_tokenizer(text)["input_ids"]
    tokens = [smollm2_tokenizer.decode([i]) for i in ids]
    roles = token_roles(smollm2_tokenizer, text, ids, "Germany")
    by_token: dict[str, set[str]] = {}
    for token, role in zip(tokens, roles, strict=True):
        by_token.setdefault(token, set()).add(role)
    assert roles[0] == "first" and roles[-1] == "self"
    assert by_token["<|im_start|>"] - {"first"} == {"punct"} and by_token["<|im_end|>"] == {"punct"}
    assert by_token[" Germany"] == {"subject"} and by_token[" capital"] == {"relation"}
    assert "punct" in by_token["\n"]


def _with_bos(tokenizer: transformers.PreTrainedTokenizerFast) -> transformers.PreTrainedTokenizerFast:
    """The tiny tokenizer, adding <bos> by itself as Gemma's and Llama's do."""
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tokenizer.bos_token_id)]
    )
    return tokenizer


def test_bos_is_first_and_a_later_special_token_is_punct(tiny_tokenizer):
    tokenizer = _with_bos(tiny_tokenizer)
    assert _tokens(tokenizer, PROMPT) == ["<bos>", "The", " capital", " of", " Germany", " is"]
    assert _roles(tokenizer, PROMPT, "Germany") == ["first", "relation", "relation", "relation", "subject", "self"]
    text = "Berlin<eos> The capital of Germany is"
    tokens, roles = _tokens(tokenizer, text), _roles(tokenizer, text, "Germany")
    assert roles[tokens.index("<eos>")] == "punct"


@pytest.mark.parametrize("which", ["smollm2", "tiny"])
def test_without_offsets_the_subject_is_found_by_its_ids(which, request, tiny_tokenizer, monkeypatch):
    tokenizer = request.getfixturevalue("smollm2_tokenizer") if which == "smollm2" else tiny_tokenizer
    texts = {PROMPT: "Germany", "The capital of the United Kingdom is": "United Kingdom", QA_PROMPT: "Germany"}
    with_offsets = {text: _roles(tokenizer, text, subject) for text, subject in texts.items()}
    monkeypatch.setattr(token_roles_module, "_offsets", lambda *args: None)
    assert {text: _roles(tokenizer, text, subject) for text, subject in texts.items()} == with_offsets


@pytest.mark.parametrize("subject", ["France", "germany", "Germany is a", " "])
def test_subject_not_in_the_prompt_is_a_one_line_error(tiny_tokenizer, subject, monkeypatch):
    for offsets in (True, False):
        if not offsets:
            monkeypatch.setattr(token_roles_module, "_offsets", lambda *args: None)
        with pytest.raises(PromptError) as caught:
            _roles(tiny_tokenizer, PROMPT, subject)
        assert "\n" not in caught.value.message and "subject" in caught.value.message


def test_a_subject_at_position_zero_keeps_first(tiny_tokenizer):
    text = "Germany is"
    assert _roles(tiny_tokenizer, text, "Germany")[0] == "first"


# --- attention by role on tiny models ------------------------------------------------------------

_MODELS: dict[str, torch.nn.Module] = {}


def _model(family: str) -> torch.nn.Module:
    """One model per family for the whole module (the analysis never changes it)."""
    if family not in _MODELS:
        _MODELS[family] = tiny_models.build_any(family)
    return _MODELS[family]


def _expected_roles(tokenizer, ids: list[int], subject: str) -> list[str]:
    """The roles rebuilt from each token's decoded text alone (no offsets): the tiny tokenizer adds no BOS."""
    texts = [tokenizer.decode([i]) for i in ids]
    joined = "".join(texts)
    start = joined.index(subject)
    span = range(start, start + len(subject))
    roles, position = [], 0
    for index, text in enumerate(texts):
        chars = range(position, position + len(text))
        position += len(text)
        if index == 0:
            roles.append("first")
        elif index == len(ids) - 1:
            roles.append("self")
        elif set(chars) & set(span):
            roles.append("subject")
        elif not any(c.isalnum() for c in text):
            roles.append("punct")
        else:
            roles.append("relation" if any(c.isalpha() for c in text) else "other")
    return roles


def _eager_rows(model: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, the last query row ``[B, H, T]`` of ``output_attentions`` on an eager deep copy."""
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = eager(input_ids=input_ids, attention_mask=mask, position_ids=positions, output_attentions=True,
                    use_cache=False)
    return [layer[:, :, -1, :].double() for layer in out.attentions]


def _by_key(rows: list[HeadAttention]) -> dict[tuple[int, int, int], HeadAttention]:
    return {(row.prompt_index, row.layer, row.head): row for row in rows}


def _masses(row: HeadAttention) -> list[float]:
    return [getattr(row, f"attn_{role}") for role in ROLES]


def _forward_tol(parts: ModelParts, rows: torch.Tensor) -> float:
    """Attention probabilities of two forward passes with other kernels (another batch shape).

    Each of the L+1 stages re-rounds d_model-term sums; in the scores that is an error
    of log-probabilities at their own magnitude, and a probability moves by ``p * d log p``,
    so a sum of probabilities by at most that error.
    """
    log_p = torch.log(rows.double())
    return fp32_tol(max(1.0, max_abs(log_p)), n_terms=parts.d_model * (parts.n_layers + 1))


BATCH = [LONG_PROMPT, PROMPT, QA_PROMPT]


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_masses_sum_to_one_and_match_an_eager_forward(family: str, tiny_tokenizer) -> None:
    model, tokenizer = _model(family), tiny_tokenizer
    parts = model_parts(model)
    implementation = model.config._attn_implementation
    prompt_ids = [tokenizer(text)["input_ids"] for text in BATCH]
    roles = [_expected_roles(tokenizer, ids, "Germany") for ids in prompt_ids]
    assert roles == [token_roles(tokenizer, text, ids, "Germany") for text, ids in zip(BATCH, prompt_ids, strict=True)]
    input_ids, mask = left_padded(prompt_ids, tokenizer.pad_token_id)
    got = _by_key(attention_by_role(model, parts, input_ids, mask, roles))
    assert model.config._attn_implementation == implementation
    assert len(got) == len(BATCH) * parts.n_layers * parts.n_heads
    width = input_ids.shape[1]
    for layer, rows in enumerate(_eager_rows(model, input_ids, mask)):
        for b, row_roles in enumerate(roles):
            padded = width - len(row_roles)
            assert torch.all(rows[b, :, :padded] == 0)
            for head in range(parts.n_heads):
                row = rows[b, head, padded:]
                result = got[(b, layer, head)]
                assert result.hook == f"blocks.{layer}.attn.hook_pattern"
                tol = fp32_tol(1.0, n_terms=len(row_roles))
                assert math.fsum(_masses(result)) == pytest.approx(1.0, rel=0, abs=tol)
                for role in ROLES:
                    expected = float(sum(p for p, r in zip(row.tolist(), row_roles, strict=True) if r == role))
                    assert getattr(result, f"attn_{role}") == pytest.approx(expected, rel=0, abs=tol), role
                kept = row[row > 0]
                entropy = float(-(kept * torch.log2(kept)).sum())
                entropy_tol = bits(fp32_tol(max(1.0, max_abs(torch.log(kept))), n_terms=len(row_roles)))
                assert result.attn_entropy_bits == pytest.approx(entropy, rel=0, abs=entropy_tol)


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_left_padded_rows_match_single_prompts(family: str, tiny_tokenizer) -> None:
    model, tokenizer = _model(family), tiny_tokenizer
    parts = model_parts(model)
    prompt_ids = [tokenizer(text)["input_ids"] for text in BATCH]
    roles = [token_roles(tokenizer, text, ids, "Germany") for text, ids in zip(BATCH, prompt_ids, strict=True)]
    batched = attention_by_role_batched(model, parts, prompt_ids, roles, tokenizer.pad_token_id, batch_size=3)
    assert [row.prompt_index for row in batched] == sorted(row.prompt_index for row in batched)
    got = _by_key(batched)
    for index, ids in enumerate(prompt_ids):
        single_ids = torch.tensor([ids])
        single = _by_key(attention_by_role(model, parts, single_ids, None, [roles[index]]))
        scale_rows = torch.stack(_eager_rows(model, single_ids, torch.ones_like(single_ids)))
        tol = _forward_tol(parts, scale_rows)
        for (_, layer, head), want in single.items():
            have = got[(index, layer, head)]
            assert _masses(have) == pytest.approx(_masses(want), rel=0, abs=tol)
            entropy_tol = bits(tol * (1.0 + max_abs(torch.log(scale_rows))))
            assert have.attn_entropy_bits == pytest.approx(want.attn_entropy_bits, rel=0, abs=entropy_tol)


def _gemma3_with_a_global_layer() -> torch.nn.Module:
    """The tiny Gemma 3 (all three layers sliding at its default pattern) with layer 1 global."""
    config = copy.deepcopy(_model("gemma3").config)
    config.layer_types = ["sliding_attention", "full_attention", "sliding_attention"]
    torch.manual_seed(0)
    return transformers.Gemma3ForCausalLM(config).float().eval()


def _sliding_layers(model: torch.nn.Module) -> list[bool]:
    config = model.config.get_text_config()
    if getattr(config, "layer_types", None) is not None:
        return [kind == "sliding_attention" for kind in config.layer_types]
    return [getattr(config, "sliding_window", None) is not None] * config.num_hidden_layers


@pytest.mark.parametrize("family", ["mistral", "gemma2", "gemma3"])
def test_sliding_window_layers_give_nothing_to_roles_outside_the_window(family: str, tiny_tokenizer) -> None:
    model = _gemma3_with_a_global_layer() if family == "gemma3" else _model(family)
    parts = model_parts(model)
    assert parts.n_kv_heads < parts.n_heads  # grouped-query attention
    ids = tiny_tokenizer(LONG_PROMPT)["input_ids"]
    assert len(ids) > WINDOW
    roles = token_roles(tiny_tokenizer, LONG_PROMPT, ids, "Vienna")
    # The subject sits near the start: outside the window of the last position, as position 0 is.
    outside = [role for position, role in enumerate(roles) if len(ids) - 1 - position >= WINDOW]
    assert set(outside) >= {"first", "subject"} and "subject" not in roles[-WINDOW:]
    got = attention_by_role(model, parts, torch.tensor([ids]), None, [roles])
    sliding = _sliding_layers(model)
    assert any(sliding) and (family == "mistral" or not all(sliding))
    for row in got:
        assert sum(_masses(row)) == pytest.approx(1.0, rel=0, abs=fp32_tol(1.0, n_terms=len(ids)))
        if sliding[row.layer]:
            assert (row.attn_first, row.attn_subject) == (0.0, 0.0), (row.layer, row.head)
        else:
            assert row.attn_first > 0 and row.attn_subject > 0, (row.layer, row.head)


def test_roles_that_do_not_fit_the_batch_are_refused(tiny_tokenizer) -> None:
    model = _model("llama")
    parts = model_parts(model)
    ids = tiny_tokenizer(PROMPT)["input_ids"]
    roles = token_roles(tiny_tokenizer, PROMPT, ids, "Germany")
    input_ids, mask = left_padded([ids, ids[:3]], 0)
    with pytest.raises(ValueError, match="row 1: 5 roles for 3 real tokens"):
        attention_by_role(model, parts, input_ids, mask, [roles, roles])
    gap = mask.clone()
    gap[1, -2] = 0
    with pytest.raises(ValueError, match="not left padding"):
        attention_by_role(model, parts, input_ids, gap, [roles, roles[:2]])


# --- the bundled SmolLM2 -------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_masses_sum_to_one_and_attention_is_restored(smollm2) -> None:
    model, tokenizer, parts = smollm2.model, smollm2.tokenizer, smollm2.parts
    implementation = model.config._attn_implementation
    texts = {PROMPT: "Germany", "The capital of the United Kingdom is": "United Kingdom"}
    prompt_ids = [tokenizer(text)["input_ids"] for text in texts]
    roles = [token_roles(tokenizer, text, ids, subject) for (text, subject), ids in zip(texts.items(), prompt_ids,
                                                                                        strict=True)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = attention_by_role_batched(model, parts, prompt_ids, roles, pad_id)
    assert model.config._attn_implementation == implementation
    assert len(rows) == len(texts) * parts.n_layers * parts.n_heads
    for row in rows:
        n_tokens = len(prompt_ids[row.prompt_index])
        assert sum(_masses(row)) == pytest.approx(1.0, rel=0, abs=fp32_tol(1.0, n_terms=n_tokens))
        assert 0.0 <= row.attn_entropy_bits <= math.log2(n_tokens) + fp32_tol(math.log2(n_tokens), n_tokens)
