"""A conversation with a loaded model: history, prompt rendering, streamed generation.

With a chat template (instruction-tuned models such as SmolLM2-Instruct) the
history is a list of role/content messages rendered by the tokenizer's own
template. Without one (base models) the conversation is one growing text: each
message is appended to the text so far and the model continues it.

Greedy decoding (temperature 0) is deterministic. Sampling (temperature > 0)
draws from torch's generator, which ``reproducibility.set_deterministic`` seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from jinja2.exceptions import TemplateError
from transformers import GenerationConfig, TextStreamer

from layers_core.errors import PromptError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Message = dict[str, str]
# tokenizer.model_max_length holds a huge sentinel when the tokenizer does not know its limit.
_NO_LIMIT = 10**9


class HasModelAndTokenizer(Protocol):
    """What a session needs from ``layers_core.models.loading.LoadedModel``."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


@dataclass(frozen=True)
class GenerationSettings:
    """How replies are generated.

    Attributes:
        max_new_tokens: longest reply, in tokens.
        temperature: 0 picks the most likely token every step (greedy, repeatable);
            above 0 samples, higher being more random.
        top_p: when sampling, draw only from the most likely tokens whose
            probabilities add up to ``top_p`` (1.0 keeps every token).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 or more, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p}")


class _CallbackStreamer(TextStreamer):
    """TextStreamer that hands each finished piece of text to a callback instead of printing."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, on_token: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_token = on_token

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._on_token(text)


def _ignore(_text: str) -> None:
    """Default callback: drop the text."""


class ChatSession:
    """A conversation with one model, kept across turns until ``reset()``.

    Args:
        loaded: the model (eval mode, on its device) and its tokenizer.
        system: an optional system message put first in every prompt.
        settings: generation settings; defaults to greedy, 256 new tokens.
    """

    def __init__(
        self,
        loaded: HasModelAndTokenizer,
        system: str | None = None,
        settings: GenerationSettings | None = None,
    ) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.system = system
        self.settings = settings or GenerationSettings()
        self.uses_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.context_length = _context_length(self.model, self.tokenizer)
        self._history: list[Message] = []
        self._fold_system = False  # set when the template rejects a system role

    @property
    def messages(self) -> list[Message]:
        """The conversation so far, system message first (a copy)."""
        return self._with_system(self._history)

    def reset(self) -> None:
        """Forget every turn; the system message stays."""
        self._history.clear()

    def reply(
        self,
        text: str,
        on_token: Callable[[str], None] = _ignore,
        on_notice: Callable[[str], None] = _ignore,
    ) -> str:
        """Add the user's ``text``, generate the model's answer and keep both in history.

        Args:
            text: the user's message.
            on_token: called with each piece of the reply as it is generated.
            on_notice: called with a sentence when the session changes something
                the user should know about (oldest turns dropped, reply shortened).

        Returns:
            The reply, special tokens removed.

        Raises:
            PromptError: the message alone does not fit in the model's context
                (the history is left as it was).
            KeyboardInterrupt: generation was interrupted; the turn is not kept.
        """
        prompt_ids, max_new = self._fit_to_context(self._history + [{"role": "user", "content": text}], on_notice)
        try:
            answer = self._generate(prompt_ids, max_new, on_token)
        except BaseException:  # includes Ctrl-C: a failed turn leaves no trace in history
            self._history.pop()
            raise
        kept = answer.strip() if self.uses_chat_template else answer
        self._history.append({"role": "assistant", "content": kept})
        return answer

    def _fit_to_context(self, history: list[Message], on_notice: Callable[[str], None]) -> tuple[list[int], int]:
        """Prompt ids for ``history`` that leave room for a reply; becomes the history if it fits.

        The oldest turns are dropped until the prompt fits. If even the last
        message alone does not fit, nothing changes and PromptError is raised.
        """
        limit = self.context_length
        ids = self._prompt_ids(history, on_notice)
        if limit is None:
            self._history = history
            return ids, self.settings.max_new_tokens
        # Keep room for the whole reply, or half the context when the reply asked for is longer.
        room_wanted = min(self.settings.max_new_tokens, limit // 2)
        dropped = 0
        while len(ids) + room_wanted > limit and len(history) > 1:
            history = history[2:]  # the oldest user message and the reply to it
            dropped += 1
            ids = self._prompt_ids(history, on_notice)
        if len(ids) + room_wanted > limit:
            raise PromptError(
                f"with this message the prompt is {len(ids)} tokens and the model's context is {limit}, "
                f"{room_wanted} of which are kept for the reply; shorten it or lower --max-new-tokens"
            )
        self._history = history
        if dropped:
            on_notice(f"the conversation outgrew the model's context ({limit} tokens): "
                      f"dropped the {dropped} oldest turn(s)")
        max_new = min(self.settings.max_new_tokens, limit - len(ids))
        if max_new < self.settings.max_new_tokens:
            on_notice(f"reply limited to {max_new} tokens by the model's context ({limit} tokens)")
        return ids, max_new

    def _with_system(self, history: list[Message]) -> list[Message]:
        """``history`` with the system message first, as copies."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(m) for m in history]

    def _prompt_ids(self, history: list[Message], on_notice: Callable[[str], None]) -> list[int]:
        """Token ids of ``history``, ending where the model should answer."""
        if not self.uses_chat_template:
            return list(self.tokenizer(self._plain_text(history)).input_ids)
        rendered = self._render_chat(self._with_system(history), on_notice)
        return list(self.tokenizer(rendered, add_special_tokens=False).input_ids)

    def _plain_text(self, history: list[Message]) -> str:
        """``history`` as one text, for a model without a chat template."""
        parts = [self.system + "\n"] if self.system else []
        for message in history:
            if message["role"] == "user" and parts and not parts[-1].endswith("\n"):
                parts.append("\n")
            parts.append(message["content"])
        return "".join(parts)

    def _render_chat(self, messages: list[Message], on_notice: Callable[[str], None]) -> str:
        """``messages`` through the tokenizer's chat template."""
        if self._fold_system:
            return self._apply_template(_fold_system_into_first_user(messages))
        try:
            return self._apply_template(messages, raw_errors=messages[0]["role"] == "system")
        except TemplateError:
            # Some templates accept no system role: its text opens the first user message instead.
            rendered = self._apply_template(_fold_system_into_first_user(messages))
        self._fold_system = True
        on_notice("this model's chat template has no system role: the system text now opens the first message")
        return rendered

    def _apply_template(self, messages: list[Message], raw_errors: bool = False) -> str:
        """Render ``messages`` ending with the assistant's turn; a refusal becomes a PromptError."""
        try:
            rendered: Any = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError as err:
            if raw_errors:
                raise
            raise PromptError(f"the model's chat template refused the conversation: {err}") from err
        return str(rendered)

    def _generate(self, prompt_ids: list[int], max_new: int, on_token: Callable[[str], None]) -> str:
        """Generate up to ``max_new`` tokens after ``prompt_ids``, streaming them to ``on_token``."""
        input_ids = torch.tensor([prompt_ids], device=self.model.device)
        output = self.model.generate(  # type: ignore[operator]  # transformers types generate as a Tensor attribute
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=self._generation_config(max_new),
            streamer=_CallbackStreamer(self.tokenizer, on_token),
        )
        return str(self.tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True))

    def _generation_config(self, max_new: int) -> GenerationConfig:
        """Greedy or sampled decoding exactly as the settings say; stops at any end token."""
        stop = _stop_token_ids(self.model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        common: dict[str, Any] = dict(
            max_new_tokens=max_new,
            eos_token_id=stop or None,
            pad_token_id=pad if pad is not None else (stop[0] if stop else None),
        )
        if self.settings.temperature == 0:
            return GenerationConfig(do_sample=False, **common)
        # top_k=0 turns off transformers' default top-50 cut, so only the documented settings apply.
        return GenerationConfig(do_sample=True, temperature=self.settings.temperature,
                                top_p=self.settings.top_p, top_k=0, **common)


def _fold_system_into_first_user(messages: list[Message]) -> list[Message]:
    """Messages without a system role: its text opens the first user message."""
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    if rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    return rest


def _stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """End-of-text ids from the model's generation config and the tokenizer, without repeats."""
    found: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    for token_id in ([] if configured is None else [configured] if isinstance(configured, int) else configured):
        if token_id not in found:
            found.append(int(token_id))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in found:
        found.append(int(tokenizer.eos_token_id))
    return found


def _context_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int | None:
    """Longest sequence the model takes: its config's positions, else the tokenizer's limit."""
    config = model.config.get_text_config()
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        return int(positions)
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit and limit < _NO_LIMIT else None
