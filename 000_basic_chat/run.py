"""000 basic chat: talk with a model in the terminal, or ask one question with --prompt.

Outline: parse the flags, seed, load the model, then either answer one prompt
and exit or read messages until /quit. The conversation itself (history, chat
template, streaming) lives in layers_core.prompts.chat_session.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from layers_core.cli import INTERRUPTED_EXIT_CODE, run_main, status
from layers_core.errors import PromptError
from layers_core.models.model_spec import BUNDLED_ALIASES, DEFAULT_MODEL, parse_model_spec
from layers_core.runs.arguments import ArgumentParser, add_model_arguments

if TYPE_CHECKING:
    from layers_core.prompts.chat_session import ChatSession

COMMANDS = {
    "/help": "show this list",
    "/reset": "forget the conversation so far and start a new one",
    "/quit": "leave (Ctrl-D does the same; Ctrl-C while the model writes stops that reply)",
}

DESCRIPTION = """\
Chat with a language model in this terminal. Type a message and press Enter; the
reply appears word by word. The model remembers the conversation until you type
/reset. Models with a chat format (such as the default, SmolLM2-Instruct) answer
as an assistant; models without one simply continue the text you type."""

EPILOG = "commands inside the chat:\n" + "\n".join(f"  {c:<8} {h}" for c, h in COMMANDS.items()) + """

bundled models (no download needed):
""" + "\n".join(f"  {alias:<14} {text}" for alias, text in BUNDLED_ALIASES.items()) + """

examples:
  python 000_basic_chat/run.py
  python 000_basic_chat/run.py --prompt "What is the capital of Germany?"
  python 000_basic_chat/run.py --model gemma3-270m --temperature 0.7"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line, each flag explained for someone new to Python and ML."""
    parser = ArgumentParser(
        prog="000_basic_chat/run.py", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser, several=False, default_models=(DEFAULT_MODEL,), with_out=False)
    parser.add_argument("--prompt", metavar="TEXT", help=(
        "ask this one question, print the answer and exit, instead of opening a chat"))
    parser.add_argument("--system", metavar="TEXT", help=(
        "instructions the model sees before the conversation, e.g. \"Answer in one sentence.\""))
    parser.add_argument("--max-new-tokens", type=_positive_int, default=256, metavar="N", help=(
        "longest reply, in tokens (a token is a word or a piece of one; default: 256)"))
    parser.add_argument("--temperature", type=_non_negative_float, default=0.0, metavar="T", help=(
        "randomness of the replies: 0 (the default) always picks the most likely next word, so the same "
        "question gives the same answer; 0.7 is varied, above 1.5 rambles"))
    parser.add_argument("--top-p", type=_probability, default=1.0, metavar="P", help=(
        "only with a temperature above 0: choose among the most likely words whose chances add up to P "
        "(e.g. 0.9 leaves out unlikely words; default 1.0 leaves nothing out)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, load the model, then answer one prompt or chat until /quit."""
    args = build_parser().parse_args(argv)
    if args.prompt is not None and not args.prompt.strip():
        raise PromptError("--prompt is empty; give the question in quotes, e.g. --prompt \"Hello\"")
    spec = parse_model_spec(args.model)  # a mistyped name fails here, before torch is imported
    # Imported only now so --help and mistakes answer at once, without loading torch.
    from layers_core.models.loading import load_model
    from layers_core.prompts.chat_session import ChatSession, GenerationSettings
    from layers_core.runs.reproducibility import set_deterministic

    set_deterministic()  # before loading: CUDA must see CUBLAS_WORKSPACE_CONFIG first
    loaded = load_model(spec, device=args.device, dtype=args.dtype,
                        trust_remote_code=args.trust_remote_code, check_bridge=False)
    status(f"{loaded.spec.name} on {loaded.plan.device} in {loaded.plan.dtype}: {loaded.plan.reason}")
    for warning in loaded.plan.warnings:
        status(f"warning: {warning}")
    settings = GenerationSettings(args.max_new_tokens, args.temperature, args.top_p)
    session = ChatSession(loaded, system=args.system, settings=settings)
    if args.prompt is not None:
        return answer_once(session, args.prompt)
    return chat(session)


def answer_once(session: "ChatSession", prompt: str) -> int:
    """Print the reply to ``prompt`` as it is generated; 130 if Ctrl-C stops it."""
    try:
        session.reply(prompt, on_token=_write, on_notice=_note)
    except KeyboardInterrupt:
        _write("\n")
        status("interrupted: reply stopped")
        return INTERRUPTED_EXIT_CODE
    _write("\n")
    return 0


def chat(session: "ChatSession", read: Callable[[str], str] = input) -> int:
    """Read messages and answer them until /quit, end of input or Ctrl-C at the prompt."""
    mode = "chat format" if session.uses_chat_template else "no chat format: your text is continued"
    print(f"Chat ready ({mode}). Type /help for commands, /quit to leave.", flush=True)
    while True:
        try:
            line = read("> ").strip()
        except (EOFError, KeyboardInterrupt):
            _write("\n")
            return 0
        if not line:
            continue
        if line.startswith("/"):
            if run_command(line, session):
                return 0
            continue
        reply_in_chat(session, line)


def run_command(line: str, session: "ChatSession") -> bool:
    """Carry out a /command; True when the chat should end."""
    command = line.split()[0].lower()
    if command in ("/quit", "/exit"):
        return True
    if command == "/reset":
        session.reset()
        print("(conversation cleared)", flush=True)
    elif command == "/help":
        print("\n".join(f"  {c:<8} {h}" for c, h in COMMANDS.items()), flush=True)
    else:
        print(f"(unknown command {command}; /help lists the commands)", flush=True)
    return False


def reply_in_chat(session: "ChatSession", line: str) -> None:
    """Stream one reply; Ctrl-C stops it and a too-long message is reported, the chat goes on."""
    try:
        session.reply(line, on_token=_write, on_notice=_note)
    except KeyboardInterrupt:
        _write("\n(reply stopped; it is not kept in the conversation)\n")
        return
    except PromptError as err:
        status(f"error: {err.message}")
        return
    _write("\n")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _note(text: str) -> None:
    status(f"note: {text}")



if __name__ == "__main__":
    run_main(main)
