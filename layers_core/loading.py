"""The one place that turns a model spec into a loaded model and tokenizer.

``load_model`` reads the config first (no weights), asks
``device_policy.plan_device`` where and in which dtype to run, loads the weights
in that dtype, moves them there, and checks that the lens (``architecture.model_parts``)
and the TransformerLens bridge can handle the architecture. Every failure a user
can cause becomes a one-line ``TinycaveError`` (see ``load_errors``). GGUF files
go through ``gguf_loading`` and its cache; hub ids and folders through
transformers' ``from_pretrained`` with ``use_safetensors=True`` (pickled ``.bin``
weights can run code when loaded).
"""

from __future__ import annotations

import copy
import gc
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers_core.errors import ModelTooLargeError, UnsupportedArchitectureError
from layers_core.gguf_loading import load_gguf, read_gguf_config
from layers_core.load_errors import check_folder, explain_hub_error, first_line, translated_errors
from layers_core.model_spec import ModelSpec, parse_model_spec

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
    from transformer_lens.model_bridge import TransformerBridge

    from layers_core.device_policy import DevicePlan

__all__ = [
    "LoadedModel", "check_architecture", "check_bridge_support", "check_config_architecture",
    "explain_hub_error", "free_model", "load_model", "read_config",
]


@dataclass
class LoadedModel:
    """A model ready for experiments, with where it came from.

    Attributes:
        spec: What the user asked for.
        model: The transformers model, eval mode, on ``plan.device`` in ``plan.dtype``
            (None after ``free_model``).
        tokenizer: Its tokenizer.
        plan: The device and dtype decision, with its reason.
        source: Provenance: kind, location, gguf_sha256 / cache ("hit", "built" or
            None) for GGUF files, load_seconds.
    """

    spec: ModelSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    plan: DevicePlan
    source: dict
    _bridge: TransformerBridge | None = field(default=None, repr=False, compare=False)

    def bridge(self) -> TransformerBridge:
        """The TransformerLens bridge around ``model``, booted on first call (no hub access).

        Booting changes ``model`` in place: TransformerLens wraps its submodules
        (``model.model.layers[i]`` becomes a ``BlockBridge``, each ``Linear`` a
        ``LinearBridge``) and switches attention to eager. Afterwards the HF
        model's logits equal the bridge's exactly, but differ from the logits it
        gave before booting (sdpa) by ~1e-5 in fp32, and ``architecture.model_parts``
        refuses the wrapped model. Take ``model_parts`` and capture before booting,
        or load a second copy for the bridge. The bridge gets its own copy of the
        tokenizer, so ``tokenizer`` is not changed.
        """
        if self._bridge is None:
            from transformer_lens.model_bridge import TransformerBridge

            name = self.spec.location if self.spec.kind == "hub" else self.spec.name
            try:
                self._bridge = TransformerBridge.boot_transformers(
                    name,
                    hf_model=self.model,
                    tokenizer=copy.deepcopy(self.tokenizer),
                    device=self.plan.device,
                    dtype=self.plan.torch_dtype(),
                )
            except (ValueError, NotImplementedError) as err:
                raise UnsupportedArchitectureError(
                    f"the TransformerLens bridge cannot wrap {type(self.model).__name__}: {first_line(err)}"
                ) from err
        return self._bridge


def load_model(
    spec: ModelSpec | str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    check_bridge: bool = True,
) -> LoadedModel:
    """Load a bundled alias, hub id, checkpoint folder or GGUF file.

    Args:
        spec: A parsed spec or the text the user typed.
        device: "auto", "cuda", "mps" or "cpu" (see ``device_policy.plan_device``).
        dtype: "auto" or a dtype name.
        trust_remote_code: Run model code shipped with a hub repo or folder.
            Only when the user passed ``--trust-remote-code``.
        check_bridge: Also refuse architectures the TransformerLens bridge cannot wrap.

    Raises:
        TinycaveError: A subclass naming what went wrong and what to do.
    """
    from layers_core.device_policy import plan_device

    spec = parse_model_spec(spec) if isinstance(spec, str) else spec
    started = time.perf_counter()
    gguf = read_gguf_config(spec) if spec.kind in ("bundled", "gguf") else None
    config = gguf.config if gguf else read_config(spec, trust_remote_code=trust_remote_code)
    check_config_architecture(config, check_bridge=check_bridge)  # before weights are downloaded or dequantized
    plan = plan_device(config, device, dtype)
    if gguf:
        model, tokenizer, source = load_gguf(spec, gguf, plan)
    else:
        model, tokenizer, source = _load_transformers(spec, config, plan, trust_remote_code)
    model = _to_device(model, plan)
    if plan.device == "cpu":
        _own_aligned_memory(model)
    # GGUF configs carry no `architectures`, and the bridge picks its adapter from it.
    model.config.architectures = [type(model).__name__]
    model.eval()
    check_architecture(model, check_bridge=check_bridge)
    source["load_seconds"] = round(time.perf_counter() - started, 3)
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, plan=plan, source=source)


def read_config(spec: ModelSpec, *, trust_remote_code: bool = False) -> PretrainedConfig:
    """The model's transformers config, without loading weights.

    For a GGUF file the config comes from its cache entry when there is one
    (fast), else from the GGUF metadata (a few seconds).
    """
    if spec.kind in ("bundled", "gguf"):
        return read_gguf_config(spec).config
    from transformers import AutoConfig

    if spec.kind == "folder":
        check_folder(Path(spec.location))
    with translated_errors(spec):
        return AutoConfig.from_pretrained(spec.location, trust_remote_code=trust_remote_code)


def free_model(loaded: LoadedModel) -> None:
    """Release a model's memory: drop the bridge and the weights, collect, empty GPU caches.

    The weights are moved to the meta device first, so memory is returned even
    if something else still holds the module. ``loaded.model`` is None afterwards.
    """
    import torch

    loaded._bridge = None
    if loaded.model is not None:
        loaded.model.to("meta")
    loaded.model = None  # type: ignore[assignment]
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if torch.backends.mps.is_available():
        torch.mps.empty_cache()


def check_architecture(model: PreTrainedModel, *, check_bridge: bool = True) -> str:
    """Refuse a model the lens, or the TransformerLens bridge, cannot handle; return its class name."""
    from layers_core.architecture import model_parts

    model_parts(model)
    return check_bridge_support(model) if check_bridge else type(model).__name__


def check_bridge_support(model: PreTrainedModel) -> str:
    """Refuse a model class the TransformerLens bridge has no adapter for, without booting it."""
    return _check_bridge_name(type(model).__name__)


def check_config_architecture(config: PretrainedConfig, *, check_bridge: bool = True) -> None:
    """Refuse, before any weights load or download, a config whose class the lens or bridge cannot handle.

    Only transformers' own classes are known from a config; remote code is judged after loading.
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from layers_core.architecture import SUPPORTED_CLASSES

    name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(getattr(config, "model_type", None))
    if not isinstance(name, str) or getattr(config, "auto_map", None):
        return
    if name not in SUPPORTED_CLASSES:
        raise UnsupportedArchitectureError(
            f"{name} ({config.model_type}) is not an architecture the logit lens supports; "
            f"use a model of a supported class: {', '.join(SUPPORTED_CLASSES)}"
        )
    if check_bridge:
        _check_bridge_name(name)


def _check_bridge_name(name: str) -> str:
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    if name not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"{name} is not an architecture the TransformerLens bridge supports; use a model of a "
            "supported family (Llama, Mistral, Qwen, Gemma, GPT-2, Phi-3, OLMo-2, ...)"
        )
    return name


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load_transformers(
    spec: ModelSpec, config: PretrainedConfig, plan: DevicePlan, trust_remote_code: bool
) -> tuple[Any, Any, dict]:
    """(model in ``plan.dtype`` on the cpu, tokenizer, provenance) for a hub id or checkpoint folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _status(f"loading {spec.location} ...")
    with translated_errors(spec):
        tokenizer = AutoTokenizer.from_pretrained(spec.location, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            spec.location, config=config, dtype=plan.torch_dtype(),
            use_safetensors=True, trust_remote_code=trust_remote_code,
        )
    source = {"kind": spec.kind, "location": spec.location, "cache": None,
              "revision": getattr(config, "_commit_hash", None)}
    return model, tokenizer, source


def _own_aligned_memory(model: Any) -> None:
    """Copy every parameter into fresh torch (64-byte aligned) memory, ties kept.

    MKL's single-row products (e.g. the head at the last position only) depend on
    the weight's memory alignment: the same weights dequantized from GGUF (numpy
    buffers) and reloaded from the cache (mmapped safetensors at file offsets) gave
    logits differing in the last digits. After this copy every load path is
    bit-identical, and the model no longer reads from a file that could change.
    """
    import torch

    with torch.no_grad():
        for param in model.parameters():  # each shared (tied) parameter once
            param.data = param.data.clone()


def _to_device(model: Any, plan: DevicePlan) -> Any:
    """Move the model to the planned device; running out of memory there is a one-line error."""
    import torch

    try:
        return model.to(plan.device)
    except (torch.OutOfMemoryError, RuntimeError) as err:
        if not isinstance(err, torch.OutOfMemoryError) and "out of memory" not in str(err):
            raise
        raise ModelTooLargeError(
            f"{plan.device} ran out of memory while the model moved there ({plan.estimate_bytes / 1e9:.1f} GB "
            f"planned in {plan.dtype}); close other programs, or pass --device cpu"
        ) from err


