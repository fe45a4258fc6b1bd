"""000 chat: the session (history, template, streaming, context) on real models, and run.py as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from layers_core.errors import PromptError
from layers_core.models.loading import LoadedModel, load_model
from layers_core.prompts.chat_session import ChatSession, GenerationSettings
from tests.experiments.cli_runs import interruptible

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "000_basic_chat" / "run.py"
FLAGS = ("--model", "--prompt", "--system", "--max-new-tokens", "--temperature", "--top-p",
         "--device", "--dtype", "--trust-remote-code")
# A template that renders each message on its own line and refuses a system role, as some real ones do.
NO_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


@pytest.fixture(scope="module")
def tiny(tiny_checkpoints: Callable[[str], Path]) -> LoadedModel:
    """A tiny random Llama loaded from its folder by the real loader; its tokenizer has no chat template."""
    return load_model(str(tiny_checkpoints("llama")), device="cpu", dtype="float32", check_bridge=False)


def _greedy_continuation(loaded: LoadedModel, ids: list[int], max_new: int) -> str:
    """What plain greedy generation gives for ``ids``: the reference a session must match."""
    out = loaded.model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=max_new,
                                pad_token_id=loaded.tokenizer.pad_token_id)
    return loaded.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)


def _run(*args: str, stdin: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(RUN), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def test_without_template_the_text_is_continued_plainly(tiny: LoadedModel) -> None:
    session = ChatSession(tiny, settings=GenerationSettings(max_new_tokens=8))
    assert not session.uses_chat_template
    pieces: list[str] = []
    reply = session.reply("The capital of Germany is", on_token=pieces.append)
    ids = tiny.tokenizer("The capital of Germany is").input_ids
    assert reply == _greedy_continuation(tiny, ids, 8)
    assert "".join(pieces) == reply  # everything returned was streamed
    # The next turn continues the whole text so far.
    second = session.reply("Berlin is")
    ids = tiny.tokenizer("The capital of Germany is" + reply + "\nBerlin is").input_ids
    assert second == _greedy_continuation(tiny, ids, 8)


def test_reset_clears_history_but_keeps_the_system_message(tiny: LoadedModel) -> None:
    settings = GenerationSettings(max_new_tokens=6)
    session = ChatSession(tiny, system="Hello world", settings=settings)
    session.reply("Madrid, Rome")
    session.reply("The capital of")
    assert len(session.messages) == 5
    session.reset()
    assert session.messages == [{"role": "system", "content": "Hello world"}]
    fresh = ChatSession(tiny, system="Hello world", settings=settings)
    assert session.reply("Berlin is") == fresh.reply("Berlin is")  # nothing of the old turns remains


def test_greedy_replies_repeat(tiny: LoadedModel) -> None:
    replies = {ChatSession(tiny, settings=GenerationSettings(max_new_tokens=10)).reply("Hello") for _ in range(2)}
    assert len(replies) == 1


def test_chat_template_is_used_and_a_system_role_it_refuses_is_folded(tiny: LoadedModel) -> None:
    tokenizer = tiny.tokenizer.__class__.from_pretrained(tiny.spec.location)
    tokenizer.chat_template = NO_SYSTEM_TEMPLATE
    loaded = LoadedModel(spec=tiny.spec, model=tiny.model, tokenizer=tokenizer, plan=tiny.plan, source={})
    session = ChatSession(loaded, system="Be brief.", settings=GenerationSettings(max_new_tokens=5))
    assert session.uses_chat_template
    notices: list[str] = []
    reply = session.reply("Hello", on_notice=notices.append)
    expected_prompt = "user: Be brief.\n\nHello\nassistant:"
    assert reply == _greedy_continuation(loaded, tokenizer(expected_prompt, add_special_tokens=False).input_ids, 5)
    assert any("no system role" in n for n in notices)
    assert session.messages[0] == {"role": "system", "content": "Be brief."}


def test_a_template_that_refuses_the_conversation_is_a_prompt_error(tiny: LoadedModel) -> None:
    tokenizer = tiny.tokenizer.__class__.from_pretrained(tiny.spec.location)
    tokenizer.chat_template = "{{ raise_exception('Conversation roles must alternate') }}"
    loaded = LoadedModel(spec=tiny.spec, model=tiny.model, tokenizer=tokenizer, plan=tiny.plan, source={})
    session = ChatSession(loaded, system="Be brief.")
    with pytest.raises(PromptError, match="must alternate"):
        session.reply("Hello")
    assert session.messages == [{"role": "system", "content": "Be brief."}]


def test_oldest_turns_are_dropped_when_the_context_fills(tiny: LoadedModel) -> None:
    session = ChatSession(tiny, settings=GenerationSettings(max_new_tokens=16))
    limit = session.context_length
    assert limit == tiny.model.config.max_position_embeddings == 128
    notices: list[str] = []
    message = "Madrid, Rome, Vienna, Warsaw, Lisbon and Athens are capitals in Europe."
    for _ in range(8):
        session.reply(message, on_notice=notices.append)
    dropped = [n for n in notices if "dropped" in n]
    assert dropped and f"({limit} tokens)" in dropped[0]
    assert len(session.messages) < 16
    # The last prompt (history without the last reply) left room for the reply.
    prompt = session._prompt_ids(session._history[:-1], notices.append)
    assert len(prompt) + 16 <= limit


def test_a_message_longer_than_the_context_is_refused_and_not_kept(tiny: LoadedModel) -> None:
    session = ChatSession(tiny, settings=GenerationSettings(max_new_tokens=16))
    session.reply("Hello")
    before = session.messages
    with pytest.raises(PromptError, match="context is 128"):
        session.reply("Berlin " * 200)
    assert session.messages == before  # the earlier turn survives the refused one


def test_interrupted_reply_leaves_history_as_it_was(tiny: LoadedModel) -> None:
    session = ChatSession(tiny, settings=GenerationSettings(max_new_tokens=20))
    session.reply("Hello")
    before = session.messages

    def ctrl_c(_text: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session.reply("The capital of", on_token=ctrl_c)
    assert session.messages == before


@pytest.mark.slow
def test_smollm2_chat_keeps_context_across_turns(smollm2: LoadedModel) -> None:
    session = ChatSession(smollm2, settings=GenerationSettings(max_new_tokens=24))
    assert session.uses_chat_template
    assert "Berlin" in session.reply("What is the capital of Germany?")
    assert "Paris" in session.reply("And of France?")  # only answerable with the first turn in view


@pytest.mark.slow
def test_one_shot_on_the_bundled_model_says_berlin(tinycave_cache: Path) -> None:
    result = _run("--prompt", "What is the capital of Germany?", "--max-new-tokens", "24")
    assert result.returncode == 0, result.stderr
    assert "Berlin" in result.stdout


def _read_until(process: subprocess.Popen[bytes], done: Callable[[bytes], bool]) -> bytes:
    """Read the process's stdout until ``done`` says so or the stream ends."""
    seen = b""
    while not done(seen):
        chunk = process.stdout.read1(256)  # type: ignore[union-attr]
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.slow
def test_ctrl_c_stops_a_reply_and_then_leaves_at_the_prompt(tinycave_cache: Path) -> None:
    process = subprocess.Popen([sys.executable, str(RUN), "--max-new-tokens", "400"], cwd=ROOT,
                               env=dict(os.environ, HF_HUB_OFFLINE="1"), preexec_fn=interruptible,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        shown = _read_until(process, lambda seen: seen.endswith(b"> "))
        process.stdin.write(b"Write a very long story about a dragon.\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        shown += _read_until(process, lambda seen: len(seen) > 20)  # the reply is streaming
        process.send_signal(signal.SIGINT)
        shown += _read_until(process, lambda seen: seen.endswith(b"> "))  # back at the prompt
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, errors.decode()
    assert b"(reply stopped" in shown + rest
    assert b"Traceback" not in errors


def test_repl_over_stdin_resets_and_quits(tiny_checkpoints: Callable[[str], Path]) -> None:
    folder = str(tiny_checkpoints("llama"))
    result = _run("--model", folder, "--max-new-tokens", "4", stdin="hello\n\n/reset\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "(conversation cleared)" in result.stdout
    assert "Traceback" not in result.stderr


def test_end_of_input_quits_cleanly(tiny_checkpoints: Callable[[str], Path]) -> None:
    result = _run("--model", str(tiny_checkpoints("llama")), "--max-new-tokens", "4", stdin="hello\n")
    assert result.returncode == 0, result.stderr


def test_help_explains_every_flag() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout
    assert "/reset" in result.stdout and "smollm2-135m" in result.stdout


@pytest.mark.parametrize("args", [
    ("--model", "/no/such/model-folder"),
    ("--prompt", "   "),
    ("--device", "tpu", "--prompt", "hi"),
])
def test_user_errors_are_one_line_without_traceback(
    args: tuple[str, ...], tiny_checkpoints: Callable[[str], Path]
) -> None:
    if "--model" not in args:
        args = ("--model", str(tiny_checkpoints("llama")), *args)
    result = _run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0])
