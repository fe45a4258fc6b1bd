"""User-facing errors: one line that says what happened and what to do.

Every failure a user can cause (a bad model name, a missing file, a prompt too
long) raises a subclass of ``TinycaveError``. ``layers_core.cli.run_main`` turns
it into that one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations


class TinycaveError(Exception):
    """An error explained to the user in one line; ``exit_code`` is the process status."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFoundError(TinycaveError):
    """A model spec that names no bundled alias, folder, file or reachable hub repo."""


class GatedModelError(TinycaveError):
    """A hub model that needs a token and an accepted licence."""


class InvalidModelFileError(TinycaveError):
    """A path that exists but holds no loadable checkpoint or GGUF file."""


class UnsupportedArchitectureError(TinycaveError):
    """An architecture the lens or the TransformerLens bridge cannot handle."""


class ModelTooLargeError(TinycaveError):
    """No device has enough memory for the model; the message carries both numbers."""


class PromptError(TinycaveError):
    """An empty or over-long prompt, or a broken prompts file line."""


class DeviceError(TinycaveError):
    """A device or dtype the user asked for that this machine cannot provide."""
