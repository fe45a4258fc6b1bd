"""Which token is "the answer", and is the prompt fit to be fed to the model.

The gold answer token is the first token of the answer *as the tokenizer splits
prompt + answer*, not the answer tokenized on its own: "Berlin" alone is
``Ber`` + ``lin`` on SmolLM2, while after "... is" it is the single token
`` Berlin``. That is only meaningful when the prompt's own tokens survive
unchanged at the start of prompt + answer; when the tokenizer merges across the
boundary (a prompt ending in a space, or mid-word) the alignment fails with a
reason, and no token is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from layers_core.errors import PromptError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Config fields that hold the longest sequence a model was built for, in the order tried.
_CONTEXT_FIELDS = (
    "max_position_embeddings",
    "n_positions",
    "n_ctx",
    "max_sequence_length",
    "seq_length",
    "max_seq_len",
)


@dataclass(frozen=True)
class AnswerAlignment:
    """Result of locating the answer's first token after the prompt.

    Attributes:
        ok: True when the prompt's tokens are a strict prefix of prompt + answer's.
        answer_token_id: id of the first answer token, None when not ok.
        answer_token: that token decoded (e.g. " Berlin"), None when not ok.
        reason: why alignment failed, None when ok.
        prompt_ids: the prompt's token ids, with the tokenizer's default special tokens.
    """

    ok: bool
    answer_token_id: int | None
    answer_token: str | None
    reason: str | None
    prompt_ids: tuple[int, ...]


def join_prompt_answer(prompt: str, answer: str) -> str:
    """Prompt followed by answer as running text.

    One space goes between them only when the prompt does not end with whitespace
    and the answer does not start with whitespace: "... is" + "Berlin" gives
    "... is Berlin", while a prompt ending in a newline (a chat template's
    "assistant\\n") is followed by the answer directly.
    """
    if prompt[-1:].isspace() or answer[:1].isspace():
        return prompt + answer
    return f"{prompt} {answer}"


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of ``text`` with the tokenizer's default special tokens (as the model sees it)."""
    return list(tokenizer(text)["input_ids"])


def _decode(tokenizer: PreTrainedTokenizerBase, token_id: int) -> str:
    return str(tokenizer.decode([token_id], clean_up_tokenization_spaces=False))


def _common_prefix_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # the shorter list bounds the common prefix
        if x != y:
            break
        n += 1
    return n


def _mismatch_reason(tokenizer: PreTrainedTokenizerBase, prompt_ids: list[int], joined_ids: list[int]) -> str:
    """Say, in tokens, why the prompt's ids are not a strict prefix of prompt + answer's ids."""
    n = _common_prefix_length(prompt_ids, joined_ids)
    if n == len(prompt_ids):
        return "the answer adds no tokens after the prompt"
    prompt_token = _decode(tokenizer, prompt_ids[n])
    joined_token = _decode(tokenizer, joined_ids[n]) if n < len(joined_ids) else None
    if prompt_ids[n] in set(tokenizer.all_special_ids):
        return (
            f"the tokenizer adds the special token {prompt_token!r} at the end of the prompt, "
            "so the prompt's tokens are not a prefix of prompt + answer"
        )
    if n == len(prompt_ids) - 1:
        return (
            f"the prompt's last token {prompt_token!r} merges with the answer "
            f"(prompt + answer has {joined_token!r} there); "
            "end the prompt on a whole word without trailing whitespace"
        )
    return (
        f"adding the answer changes how the prompt is tokenized from token {n} "
        f"({prompt_token!r} becomes {joined_token!r})"
    )


def align_answer(tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str | None) -> AnswerAlignment:
    """Find the gold answer token: the first token after the prompt in prompt + answer.

    Args:
        tokenizer: the model's tokenizer; default special tokens are added, as for the model's input.
        prompt: the text the model continues.
        answer: the expected continuation (e.g. "Berlin"), or None when there is none.

    Returns:
        An ``AnswerAlignment``; ``ok`` is False with a reason when there is no answer,
        it is blank, the tokenizer merges prompt and answer across the boundary, or
        the first token after the prompt is only the space joining them.
    """
    prompt_ids = _ids(tokenizer, prompt)

    def failed(reason: str) -> AnswerAlignment:
        return AnswerAlignment(False, None, None, reason, tuple(prompt_ids))

    if answer is None:
        return failed("no answer was given for this prompt")
    if not answer.strip():
        return failed("the answer is empty")
    joined_ids = _ids(tokenizer, join_prompt_answer(prompt, answer))
    if len(joined_ids) <= len(prompt_ids) or joined_ids[: len(prompt_ids)] != prompt_ids:
        return failed(_mismatch_reason(tokenizer, prompt_ids, joined_ids))
    answer_id = int(joined_ids[len(prompt_ids)])
    answer_token = _decode(tokenizer, answer_id)
    if answer_token.isspace() and not answer[:1].isspace():
        # e.g. SmolLM2 splits " 5" into " " + "5": the token after the prompt is the joining
        # space, so the model's probability for it says nothing about the answer.
        return failed(
            f"the first token after the prompt is the space before the answer ({answer_token!r}), "
            "not part of the answer; this tokenizer cannot score this answer as the next token"
        )
    return AnswerAlignment(True, answer_id, answer_token, None, tuple(prompt_ids))


def check_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, max_positions: int | None) -> list[int]:
    """Token ids of a prompt the model can read, or a PromptError saying why not.

    Args:
        tokenizer: the model's tokenizer (default special tokens added).
        prompt: the prompt text.
        max_positions: the model's context length, or None when unknown (no length check).

    Raises:
        PromptError: the prompt is empty or whitespace only, or has more tokens than the context.
    """
    if not prompt.strip():
        raise PromptError("the prompt is empty; give some text for the model to continue")
    ids = _ids(tokenizer, prompt)
    if max_positions is not None and len(ids) > max_positions:
        raise PromptError(
            f"the prompt is {len(ids)} tokens but the model reads at most {max_positions}; shorten the prompt"
        )
    return ids


def model_context_length(config: Any) -> int | None:
    """The longest input the model was built for, from its config, or None when it does not say.

    Looks at the usual field names (max_position_embeddings, n_positions, n_ctx, ...)
    on the config and, for multimodal configs, on its text config.
    """
    configs = [config]
    get_text_config = getattr(config, "get_text_config", None)
    if callable(get_text_config):
        configs.append(get_text_config())
    for cfg in configs:
        for field in _CONTEXT_FIELDS:
            value = getattr(cfg, field, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None
