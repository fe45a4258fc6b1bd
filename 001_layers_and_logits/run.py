"""Experiment 001: how the next-token prediction forms, layer by layer (logit lens / norm lens).

Outline: parse the arguments, resolve the prompts and models, then for each
model load -> capture -> decode -> measure -> write, then the reports, then a
short summary. Everything is written into a temporary folder that becomes
run-latest/ only when the run completes; the previous run-latest/ is kept as
run-<time>/. Run `python run.py --help` for the flags.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collections.abc import Sequence  # noqa: E402

from layers_core.cli import run_main  # noqa: E402
from layers_core.errors import PromptError  # noqa: E402
from layers_core.model_spec import ModelSpec, parse_model_spec  # noqa: E402
from layers_core.prompt_battery import (  # noqa: E402
    DEFAULT_BATTERY, PromptCase, custom_case, load_fact_battery, load_prompts_file,
)
from layers_core.reproducibility import set_deterministic  # noqa: E402
from layers_core.run_folder import staged_run_folder  # noqa: E402
from lens_run.arguments import RunOptions, parse_options  # noqa: E402
from lens_run.console import summary_lines  # noqa: E402
from lens_run.model_run import run_model  # noqa: E402


def resolve_prompts(options: RunOptions) -> list[PromptCase]:
    """The prompts to analyse: --prompt/--answer, a --prompts file, or the default battery."""
    if options.prompt is not None:
        if not options.prompt.strip():
            raise PromptError("the prompt is empty; give some text for the model to continue")
        return [custom_case(options.prompt, options.answer)]
    if options.prompts_file is not None:
        return load_prompts_file(options.prompts_file)
    return list(DEFAULT_BATTERY)


def resolve_models(texts: Sequence[str]) -> list[tuple[ModelSpec, str]]:
    """Parse every model spec up front (a typo fails before any model loads); names made unique."""
    resolved, seen = [], {}
    for text in texts:
        spec = parse_model_spec(text)
        count = seen[spec.name] = seen.get(spec.name, 0) + 1
        resolved.append((spec, spec.name if count == 1 else f"{spec.name}-{count}"))
    return resolved


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 001; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    cases = resolve_prompts(options)
    facts = load_fact_battery(options.facts) if options.facts else []
    models = resolve_models(options.models)
    parent = options.out if options.out is not None else HERE
    with staged_run_folder(parent) as run_dir:
        outcomes = [
            run_model(spec, name, cases, facts, options, run_dir, options.facts) for spec, name in models
        ]
        if options.reports:
            from lens_reports import write_reports

            write_reports(run_dir)
    for line in summary_lines(outcomes, parent / "run-latest"):
        print(line)
    return 0 if all(outcome.status == "ok" for outcome in outcomes) else 1


if __name__ == "__main__":
    run_main(main)
