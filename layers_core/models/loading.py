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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers_core.cli import status
from layers_core.errors import ModelTooLargeError, UnsupportedArchitectureError
from layers_core.models.gguf_loading import GGUF_STAGING_BYTES_PER_PARAM, device_map, load_gguf, read_gguf_config
from layers_core.models.load_errors import check_folder, explain_hub_error, first_line, translated_errors
from layers_core.models.model_spec import ModelSpec, parse_model_spec

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from layers_core.models.architecture import ModelParts
    from layers_core.models.device_policy import DevicePlan

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
    _parts: ModelParts | None = field(default=None, repr=False, compare=False)

    @property
    def parts(self) -> ModelParts:
        """Where this model keeps its blocks, norms and head (``architecture.model_parts``), found once."""
        if self._parts is None:
            from layers_core.models.architecture import model_parts

            self._parts = model_parts(self.model)
        return self._parts

    def bridge(self) -> TransformerBridge:
        """The TransformerLens bridge around a deep copy of ``model``, booted on first call (no hub access).

        Booting rewires the model it is given in place (TransformerLens wraps its
        submodules: ``model.model.layers[i]`` becomes a ``BlockBridge``, each
        ``Linear`` a ``LinearBridge``) and switches it to eager attention for good;
        ``architecture.model_parts`` then refuses it. So the bridge gets its own
        copy and ``model`` is never touched: the hook path (``hooks.activations``,
        ``capture_residuals``) keeps working on it, in its own attention
        implementation, after the bridge has booted.

        Memory cost: a second copy of the weights (tied weights stay tied within
        the copy), on the same device, for as long as this object holds the bridge
        (``free_model`` drops it). The bridge's logits equal a fresh eager run of
        ``model``; they differ from ``model``'s sdpa logits by ~1e-5 in fp32. The
        bridge gets its own copy of the tokenizer, so ``tokenizer`` is not changed.
        """
        if self._bridge is None:
            from transformer_lens.model_bridge import TransformerBridge

            name = self.spec.location if self.spec.kind == "hub" else self.spec.name
            try:
                self._bridge = TransformerBridge.boot_transformers(
                    name,
                    hf_model=copy.deepcopy(self.model),
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
    from layers_core.models.device_policy import plan_device

    spec = parse_model_spec(spec) if isinstance(spec, str) else spec
    started = time.perf_counter()
    gguf = read_gguf_config(spec) if spec.kind in ("bundled", "gguf") else None
    config = gguf.config if gguf else read_config(spec, trust_remote_code=trust_remote_code)
    check_config_architecture(config, check_bridge=check_bridge)  # before weights are downloaded or dequantized
    # A first GGUF load dequantizes the whole file in RAM before the model exists: plan for that peak.
    staging = GGUF_STAGING_BYTES_PER_PARAM if gguf and gguf.read_from_file else 0.0
    plan = plan_device(config, device, dtype, staging_bytes_per_param=staging)
    with _out_of_memory_is_too_large(plan):
        if gguf:
            model, tokenizer, source = load_gguf(spec, gguf, plan)
        else:
            model, tokenizer, source = _load_transformers(spec, config, plan, trust_remote_code)
        # Loads from safetensors arrive on the device already (device_map); a fresh dequantization is on the cpu.
        model = model.to(plan.device)
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
    loaded._parts = None
    if loaded.model is not None:
        loaded.model.to("meta")  # type: ignore[arg-type]  # transformers' decorated `to` has no usable signature
    loaded.model = None  # type: ignore[assignment]
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if torch.backends.mps.is_available():
        torch.mps.empty_cache()


def check_architecture(model: PreTrainedModel, *, check_bridge: bool = True) -> str:
    """Refuse a model the lens, or the TransformerLens bridge, cannot handle; return its class name."""
    from layers_core.models.architecture import model_parts

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

    from layers_core.models.architecture import SUPPORTED_CLASSES

    name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(str(getattr(config, "model_type", "")))
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



def _load_transformers(
    spec: ModelSpec, config: PretrainedConfig, plan: DevicePlan, trust_remote_code: bool
) -> tuple[Any, Any, dict]:
    """(model in ``plan.dtype``, tokenizer, provenance) for a hub id or checkpoint folder.

    On a GPU the weights are loaded straight onto it (``device_map``), so memory never
    holds a cpu copy and a device copy at once (on a Mac both would be the same RAM).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    status(f"loading {spec.location} ...")
    with translated_errors(spec):
        tokenizer = AutoTokenizer.from_pretrained(spec.location, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            spec.location, config=config, dtype=plan.torch_dtype(), device_map=device_map(plan),
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


@contextmanager
def _out_of_memory_is_too_large(plan: DevicePlan) -> Iterator[None]:
    """Running out of device memory while loading or moving the weights becomes a one-line error."""
    import torch

    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as err:
        if not isinstance(err, torch.OutOfMemoryError) and "out of memory" not in str(err):
            raise
        raise ModelTooLargeError(
            f"{plan.device} ran out of memory while the model loaded ({plan.estimate_bytes / 1e9:.1f} GB "
            f"planned in {plan.dtype}); close other programs, or pass --device cpu"
        ) from err
