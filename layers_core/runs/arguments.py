"""The command-line flags every experiment shares: which models, where they run, where results go.

Each ``run.py`` builds its own ``argparse`` parser for its own flags and calls
``add_model_arguments`` once, so ``--models``, ``--device``, ``--dtype``,
``--trust-remote-code`` and ``--out`` read and behave the same everywhere.
Nothing here imports torch: ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from layers_core.errors import DeviceError
from layers_core.models.device_names import DEVICE_CHOICES, normalise_dtype
from layers_core.models.model_spec import BUNDLED_ALIASES

DEFAULT_MODELS: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")

MODELS_EPILOG = """\
models: a bundled alias ({aliases}), a Hugging Face id such as
meta-llama/Meta-Llama-3-8B (gated models: run `.venv/bin/hf auth login` first and
accept the licence on the model's page), a local folder holding a transformers
checkpoint, or a .gguf file."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, except that a bad flag is one line, ``error: ...``, and exit status 2.

    The same shape as every other user error (``layers_core.cli.run_main``), instead of
    argparse's usage block followed by ``prog: error: ...``.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message> (see --help)`` on stderr and exit with status 2."""
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def models_epilog() -> str:
    """The paragraph that explains what a model may be (for a parser's epilog)."""
    return MODELS_EPILOG.format(aliases=", ".join(BUNDLED_ALIASES))


def dtype_argument(text: str) -> str:
    """``--dtype`` value: a dtype name or alias (bf16, fp16, fp32, half) made canonical."""
    try:
        return normalise_dtype(text)
    except DeviceError as err:
        raise argparse.ArgumentTypeError(err.message) from err


@dataclass(frozen=True)
class LoadOptions:
    """How every model of a run is loaded (from ``add_model_arguments``' flags)."""

    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False


@dataclass(frozen=True)
class CommonOptions:
    """The flags every run-folder experiment shares, parsed: which models, how to load them, where results go."""

    models: tuple[str, ...]
    load: LoadOptions
    out: Path | None
    reports: bool


def experiment_parser(description: str, examples: str) -> ArgumentParser:
    """An experiment's parser with ``add_model_arguments`` and ``--no-reports``; it adds its own flags after.

    Args:
        description: What the experiment does (``--help``'s first paragraph).
        examples: Example command lines, shown after the explanation of model names.
    """
    parser = ArgumentParser(
        prog="run.py", description=description, epilog=models_epilog() + "\n\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--no-reports", action="store_false", dest="reports",
        help="write only the JSON/CSV artefacts, not the plots and markdown reports",
    )
    return parser


def common_options(args: argparse.Namespace) -> CommonOptions:
    """The shared flags of a parser built by ``experiment_parser``."""
    return CommonOptions(
        models=tuple(args.models), out=args.out, reports=args.reports,
        load=LoadOptions(device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code),
    )


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    several: bool = True,
    default_models: Sequence[str] = DEFAULT_MODELS,
    with_out: bool = True,
) -> None:
    """Add ``--models`` (or ``--model``), ``--device``, ``--dtype``, ``--trust-remote-code`` and ``--out``.

    Args:
        parser: The experiment's parser.
        several: ``--models M [M ...]`` (experiments that compare models) or ``--model M`` (one model).
        default_models: The models used when none is given (the first one for ``--model``).
        with_out: Add ``--out DIR`` (experiments that write a run folder).
    """
    if several:
        parser.add_argument(
            "--models", nargs="+", default=list(default_models), metavar="MODEL",
            help="one or more models, run one after the other (default: "
            f"{' and '.join(default_models)}); see 'models' below",
        )
    else:
        parser.add_argument(
            "--model", default=default_models[0], metavar="MODEL",
            help=f"the model to use (default: {default_models[0]}); see 'models' below",
        )
    parser.add_argument(
        "--device", default="auto", choices=DEVICE_CHOICES,
        help="where the model runs: 'auto' (default) tries an NVIDIA GPU (cuda), then the Apple GPU (mps), "
        "then the processor (cpu), the first with room for the model",
    )
    parser.add_argument(
        "--dtype", default="auto", type=dtype_argument, metavar="DTYPE",
        help="number format of the weights: 'auto' (default: float32 on cpu, 16-bit on GPUs), float32, "
        "float16 or bfloat16 (also fp32, fp16, bf16); 16-bit halves the memory needed",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true",
        help="allow a downloaded model to run its own Python code (only for models whose authors you trust)",
    )
    if with_out:
        parser.add_argument(
            "--out", type=Path, metavar="DIR",
            help="write results under DIR instead of beside run.py (DIR/run-latest; the previous run is kept)",
        )


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number of at least ``minimum`` (a bad value is one line, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from err
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {minimum} or more, got {value}")
        return value

    return parse
