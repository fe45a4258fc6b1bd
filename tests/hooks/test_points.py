"""Hook points read and write what the model really computes, on real tiny models of every family."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import transformers

from layers_core.hooks.activations import Patch, eager_attention, run_with_cache, run_with_patches
from layers_core.hooks.capture import capture_residuals
from layers_core.hooks.hook_points import POINT_KINDS, HookPointError, hook_point_names
from layers_core.models.architecture import ModelParts, model_parts
from tests import tiny_models
from tests.tolerances import fp32_tol, fp_tol, max_abs

# 41 tokens: longer than the tiny sliding window (16), so the window shows in the patterns.
PROMPT = (
    "The capital of Germany is Berlin. Madrid, Rome, Vienna, Warsaw, Lisbon and Athens are capitals"
)
LAYER = 1
SLIDING = ("mistral", "gemma2", "gemma3", "gemma3_multimodal")


def _ids() -> torch.Tensor:
    return tiny_models.build_tokenizer()(PROMPT, return_tensors="pt")["input_ids"]


def _other_ids(ids: torch.Tensor) -> torch.Tensor:
    """Another prompt of the same length (random ordinary tokens)."""
    generator = torch.Generator().manual_seed(7)
    return torch.randint(3, tiny_models.VOCAB_SIZE, ids.shape, generator=generator)


def _plain_logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float()


def _tolerance(*tensors: torch.Tensor) -> float:
    """Rounding allowance for two ways of summing the same terms: the dtype's precision at the largest
    magnitude involved, grown with the number of terms summed along the last dimension (d_model)."""
    return fp_tol(max(max_abs(*tensors), 1.0), n_terms=tensors[0].shape[-1], dtype=tensors[0].dtype)


def _assert_near(actual: torch.Tensor, expected: torch.Tensor, *scale: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=_tolerance(expected, *scale))


def _no_hooks_left(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def _names(parts: ModelParts, layer: int, patterns: bool = True) -> list[str]:
    kinds = [k for k in POINT_KINDS if patterns or k != "attn.hook_pattern"]
    valid = set(hook_point_names(parts))
    return [name for name in (f"blocks.{layer}.{k}" for k in kinds) if name in valid]


def _parallel_variants() -> dict[str, Callable[[], torch.nn.Module]]:
    """StableLM and GPT-NeoX in the residual mode their tiny checkpoints do not use."""
    small = dict(vocab_size=tiny_models.VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                 num_attention_heads=4, max_position_embeddings=128)

    def build(config: transformers.PretrainedConfig) -> torch.nn.Module:
        torch.manual_seed(0)
        return transformers.AutoModelForCausalLM.from_config(config).float().eval()

    return {
        "stablelm_parallel": lambda: build(
            transformers.StableLmConfig(**small, num_key_value_heads=4, use_parallel_residual=True)
        ),
        "gpt_neox_sequential": lambda: build(transformers.GPTNeoXConfig(**small, use_parallel_residual=False)),
    }


# --- names ---------------------------------------------------------------------------------------


def test_names_list_every_point_and_drop_resid_mid_on_parallel_blocks() -> None:
    llama = model_parts(tiny_models.build_any("llama"))
    names = hook_point_names(llama)
    assert len(names) == llama.n_layers * len(POINT_KINDS)
    assert "blocks.2.attn.hook_pattern" in names and "blocks.0.hook_resid_mid" in names
    phi = model_parts(tiny_models.build_any("phi"))
    assert not any(name.endswith("hook_resid_mid") for name in hook_point_names(phi))


@pytest.mark.parametrize(
    ("family", "name", "match"),
    [
        ("llama", "blocks.3.hook_resid_pre", "out of range"),
        ("llama", "blocks.0.hook_resid", "unknown hook point"),
        ("llama", "hook_embed", "unknown hook point"),
        ("llama", "blocks.-1.hook_resid_pre", "unknown hook point"),
        ("phi", "blocks.0.hook_resid_mid", "parallel"),
        ("gpt_neox", "blocks.1.hook_resid_mid", "parallel"),
    ],
)
def test_bad_names_are_refused_in_one_line(family: str, name: str, match: str) -> None:
    model = tiny_models.build_any(family)
    with pytest.raises(HookPointError, match=match) as caught:
        run_with_cache(model, model_parts(model), _ids(), [name])
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)
    assert _no_hooks_left(model)


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_reading_leaves_the_logits_exactly_unchanged(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    ids = _ids()
    implementation = model.config._attn_implementation
    run = run_with_cache(model, parts, ids, _names(parts, LAYER, patterns=False) + _names(parts, 0, False))
    assert torch.equal(run.logits, _plain_logits(model, ids))
    # Asking for patterns runs eager attention: the logits are eager's, and sdpa comes back afterwards.
    with_patterns = run_with_cache(model, parts, ids, _names(parts, LAYER))
    assert model.config._attn_implementation == implementation
    with eager_attention(model):
        assert torch.equal(with_patterns.logits, _plain_logits(model, ids))
    assert model.config._attn_implementation == implementation
    assert _no_hooks_left(model)
    for name, tensor in run.cache.items():
        assert not tensor.requires_grad, name
        assert tensor._base is None, f"{name} is a view"


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_resid_post_is_the_next_resid_pre_and_capture_residuals_agrees(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    ids = _ids()
    names = [f"blocks.{i}.hook_resid_{k}" for i in range(parts.n_layers) for k in ("pre", "post")]
    cache = run_with_cache(model, parts, ids, names).cache
    stack, _ = capture_residuals(model, parts, ids, positions="all")
    assert torch.equal(cache["blocks.0.hook_resid_pre"], stack[0])
    for i in range(parts.n_layers):
        assert torch.equal(cache[f"blocks.{i}.hook_resid_post"], stack[i + 1])
        if i + 1 < parts.n_layers:
            assert torch.equal(cache[f"blocks.{i}.hook_resid_post"], cache[f"blocks.{i + 1}.hook_resid_pre"])


def _check_decomposition(model: torch.nn.Module) -> None:
    parts = model_parts(model)
    cache = run_with_cache(model, parts, _ids(), hook_point_names(parts)).cache
    for i in range(parts.n_layers):
        pre, post = cache[f"blocks.{i}.hook_resid_pre"], cache[f"blocks.{i}.hook_resid_post"]
        attn, mlp = cache[f"blocks.{i}.hook_attn_out"], cache[f"blocks.{i}.hook_mlp_out"]
        _assert_near(pre + attn + mlp, post, pre, attn, mlp)
        if not parts.parallel_blocks:
            mid = cache[f"blocks.{i}.hook_resid_mid"]
            _assert_near(pre + attn, mid, pre, attn)
            _assert_near(mid + mlp, post, mid, mlp)


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_attn_out_and_mlp_out_add_up_to_the_block_output(family: str) -> None:
    _check_decomposition(tiny_models.build_any(family))


@pytest.mark.parametrize("variant", sorted(_parallel_variants()))
def test_decomposition_in_the_other_residual_mode(variant: str) -> None:
    model = _parallel_variants()[variant]()
    assert model_parts(model).parallel_blocks == (variant == "stablelm_parallel")
    _check_decomposition(model)


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_z_through_the_output_projection_is_the_attention_output(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    inner = parts.block_parts[LAYER]
    seen: list[torch.Tensor] = []
    handle = inner.attn.register_forward_hook(lambda m, a, out: seen.append(out[0].detach().clone()))
    try:
        cache = run_with_cache(model, parts, _ids(), [f"blocks.{LAYER}.attn.hook_z", f"blocks.{LAYER}.hook_attn_out"])
    finally:
        handle.remove()
    z, attn_module_out = cache.cache[f"blocks.{LAYER}.attn.hook_z"], seen[0]
    assert z.shape == (1, _ids().shape[1], parts.n_heads, parts.d_head)
    weight, bias = inner.o_proj_weight(), inner.o_proj_bias()
    with torch.no_grad():
        whole = z.flatten(-2) @ weight.T + (bias if bias is not None else 0)
        heads = [z[..., h, :] @ weight[:, h * parts.d_head:(h + 1) * parts.d_head].T for h in range(parts.n_heads)]
        summed = torch.stack(heads).sum(0) + (bias if bias is not None else 0)
        _assert_near(whole, attn_module_out, attn_module_out)
        _assert_near(summed, attn_module_out, *heads)
        # What attention adds to the residual: through the post-norm (Gemma 2/3, OLMo-2), times Granite's multiplier.
        added = inner.attn_post_norm(attn_module_out) if inner.attn_post_norm is not None else attn_module_out
        added = added * parts.residual_multiplier if parts.residual_multiplier is not None else added
    assert torch.equal(cache.cache[f"blocks.{LAYER}.hook_attn_out"], added)


def _sliding_layers(model: torch.nn.Module) -> list[bool]:
    config = model.config.get_text_config()
    if getattr(config, "layer_types", None) is not None:
        return [kind == "sliding_attention" for kind in config.layer_types]
    return [getattr(config, "sliding_window", None) is not None] * config.num_hidden_layers


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_patterns_are_causal_probabilities_within_the_window(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    implementation = model.config._attn_implementation
    ids = _ids()
    seq_len = ids.shape[1]
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(parts.n_layers)]
    cache = run_with_cache(model, parts, ids, names).cache
    assert model.config._attn_implementation == implementation
    query = torch.arange(seq_len)[:, None]
    key = torch.arange(seq_len)[None, :]
    sliding = _sliding_layers(model)
    assert any(sliding) == (family in SLIDING)
    for i, name in enumerate(names):
        pattern = cache[name]
        assert pattern.shape == (1, parts.n_heads, seq_len, seq_len)
        torch.testing.assert_close(
            pattern.sum(-1), torch.ones(1, parts.n_heads, seq_len), rtol=0, atol=fp32_tol(1.0, n_terms=seq_len)
        )
        assert torch.all(pattern[..., key > query] == 0)
        far = (query - key) >= 16
        if sliding[i]:
            assert torch.all(pattern[..., far] == 0), f"layer {i} attends outside its window"
            assert torch.all(pattern[..., (query - key) == 15] > 0)
        else:
            assert torch.all(pattern[..., far & (key <= query)] > 0)


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen3", "gemma3"])
def test_grouped_query_z_is_the_pattern_times_the_shared_value_head(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    assert parts.n_kv_heads < parts.n_heads
    values: list[torch.Tensor] = []
    v_proj = model.model.layers[LAYER].self_attn.v_proj
    handle = v_proj.register_forward_hook(lambda m, a, out: values.append(out.detach().clone()))
    try:
        names = [f"blocks.{LAYER}.attn.hook_z", f"blocks.{LAYER}.attn.hook_pattern"]
        cache = run_with_cache(model, parts, _ids(), names).cache
    finally:
        handle.remove()
    z, pattern = cache[names[0]], cache[names[1]]
    v = values[0].unflatten(-1, (parts.n_kv_heads, parts.d_head))  # [B, T, KV, d_head]
    group = parts.n_heads // parts.n_kv_heads
    for h in range(parts.n_heads):
        expected = pattern[:, h] @ v[:, :, h // group]
        _assert_near(z[:, :, h], expected, expected)
    # The wrong KV head does not fit: the check can fail.
    assert not torch.allclose(z[:, :, 0], pattern[:, 0] @ v[:, :, 1], atol=1e-4)


def test_positions_keep_copies_of_the_asked_slots() -> None:
    model = tiny_models.build_any("gemma2")
    parts = model_parts(model)
    ids = _ids()
    names = _names(parts, LAYER)
    full = run_with_cache(model, parts, ids, names).cache
    last = run_with_cache(model, parts, ids, names, positions="last", logits_at="last")
    some = run_with_cache(model, parts, ids, names, positions=[0, 5, -1])
    assert last.logits.shape == (1, 1, parts.vocab_size) and some.positions == [0, 5, ids.shape[1] - 1]
    for name in names:
        dim = 2 if name.endswith("hook_pattern") else 1
        assert torch.equal(last[name], full[name].narrow(dim, ids.shape[1] - 1, 1))
        assert torch.equal(some[name], full[name].index_select(dim, torch.tensor([0, 5, ids.shape[1] - 1])))
        assert last[name]._base is None and some[name]._base is None
    with pytest.raises(ValueError, match="out of range"):
        run_with_cache(model, parts, ids, names, positions=[ids.shape[1]])


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_without_logits_the_pass_stops_after_the_deepest_point_and_reads_the_same(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    ids = _ids()
    names = ["blocks.0.hook_resid_post", f"blocks.{LAYER}.hook_resid_mid", f"blocks.{LAYER}.attn.hook_z"]
    full = run_with_cache(model, parts, ids, names)
    ran: list[int] = []
    handles = [block.register_forward_pre_hook(lambda *_, i=i: ran.append(i)) for i, block in enumerate(parts.blocks)]
    try:
        short = run_with_cache(model, parts, ids, names, logits_at="none")
    finally:
        for handle in handles:
            handle.remove()
    assert ran == list(range(LAYER + 1)) and LAYER + 1 < parts.n_layers
    assert short.logits.numel() == 0 and _no_hooks_left(model)
    for name in names:
        assert torch.equal(short[name], full[name])
    with pytest.raises(ValueError, match="needs points to read"):
        run_with_cache(model, parts, ids, [], logits_at="none")


def test_left_padded_batch_rows_match_their_prompts() -> None:
    model = tiny_models.build_any("gpt2")
    parts = model_parts(model)
    tokenizer = tiny_models.build_tokenizer()
    tokenizer.padding_side = "left"
    texts = [PROMPT, "Hello world"]
    encoded = tokenizer(texts, return_tensors="pt", padding=True)
    names = _names(parts, LAYER, patterns=False)
    batch = run_with_cache(model, parts, encoded["input_ids"], names, attention_mask=encoded["attention_mask"],
                           positions="last")
    for row, text in enumerate(texts):
        single = run_with_cache(model, parts, tokenizer(text, return_tensors="pt")["input_ids"], names,
                                positions="last")
        for name in names:
            _assert_near(batch[name][row], single[name][0], single[name])


# --- writing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_writing_a_point_with_its_own_value_changes_nothing(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    ids = _ids()
    plain = _plain_logits(model, ids)
    names = _names(parts, LAYER, patterns=False)
    cache = run_with_cache(model, parts, ids, names).cache
    for name in names:
        logits = run_with_patches(model, parts, ids, [Patch(name, cache[name])]).logits
        if name.endswith("hook_resid_mid"):
            # Written as attn_out = value - resid_pre: one rounding.
            _assert_near(logits, plain)
        else:
            assert torch.equal(logits, plain), name
    assert _no_hooks_left(model)


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_replacing_resid_post_everywhere_gives_the_other_runs_logits(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    ids = _ids()
    other = _other_ids(ids)
    name = f"blocks.{LAYER}.hook_resid_post"
    other_run = run_with_cache(model, parts, other, [name])
    patched = run_with_patches(model, parts, ids, [Patch(name, other_run[name])])
    assert torch.equal(patched.logits, other_run.logits)
    assert not torch.allclose(patched.logits, _plain_logits(model, ids))


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_adding_to_a_sublayer_output_equals_adding_to_the_residual_after_it(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    ids = _ids()
    delta = torch.randn(parts.d_model, generator=torch.Generator().manual_seed(3))
    pairs = [("hook_mlp_out", "hook_resid_post")]
    if not parts.parallel_blocks:
        pairs.append(("hook_attn_out", "hook_resid_mid"))
    for sublayer, residual in pairs:
        logits = [
            run_with_patches(model, parts, ids, [Patch(f"blocks.{LAYER}.{name}", delta, positions=[3, -1], mode="add")])
            .logits
            for name in (sublayer, residual)
        ]
        _assert_near(logits[0], logits[1])
        assert not torch.allclose(logits[0], _plain_logits(model, ids))


@pytest.mark.parametrize(
    ("family", "name", "head"),
    [("llama", "hook_resid_pre", None), ("gpt2", "attn.hook_z", 2), ("gemma2", "hook_attn_out", None),
     ("granite", "hook_mlp_out", None), ("olmo2", "hook_resid_mid", None)],
)
def test_one_position_per_row_in_one_batch_equals_each_patch_alone(family: str, name: str, head: int | None) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    ids = _ids()
    point = f"blocks.{LAYER}.{name}"
    source = run_with_cache(model, parts, _other_ids(ids), [point])[point][0]  # [T, ...]
    positions = [0, 4, 9, ids.shape[1] - 1]
    values = source[positions] if head is None else source[positions, head]
    rows = list(range(len(positions)))
    batched = run_with_patches(
        model, parts, ids.expand(len(rows), -1), [Patch(point, values, positions=positions, rows=rows, head=head)]
    ).logits
    for row, position in enumerate(positions):
        alone = run_with_patches(model, parts, ids, [Patch(point, values[row], positions=[position], head=head)])
        _assert_near(batched[row], alone.logits[0])
    assert not torch.allclose(batched[0], batched[1])


def test_a_cache_read_in_the_patched_pass_sees_the_patch() -> None:
    model = tiny_models.build_any("llama")
    parts = model_parts(model)
    ids = _ids()
    zero = Patch(f"blocks.{LAYER}.attn.hook_z", 0.0, positions=[-1], head=1)
    run = run_with_patches(model, parts, ids, [zero], read=[f"blocks.{LAYER}.attn.hook_z"])
    z = run[f"blocks.{LAYER}.attn.hook_z"]
    assert torch.all(z[0, -1, 1] == 0) and torch.all(z[0, -1, 0] != 0) and torch.all(z[0, -2, 1] != 0)


def test_hooks_and_attention_are_restored_after_an_exception_in_the_forward() -> None:
    model = tiny_models.build_any("llama")
    parts = model_parts(model)
    ids = _ids()
    reads = [f"blocks.{LAYER}.attn.hook_pattern"]
    wrong_shape = Patch(f"blocks.{LAYER}.hook_resid_post", torch.zeros(5, 7))
    with pytest.raises(ValueError, match="does not fit"):
        run_with_patches(model, parts, ids, [wrong_shape], read=reads)
    assert _no_hooks_left(model)
    assert model.config._attn_implementation == "sdpa"

    def interrupt(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        raise KeyboardInterrupt

    handle = parts.final_norm.register_forward_hook(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_with_cache(model, parts, ids, reads + [f"blocks.{LAYER}.hook_mlp_out"])
    finally:
        handle.remove()
    assert _no_hooks_left(model)
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(HookPointError, match="read-only"):
        run_with_patches(model, parts, ids, [Patch(reads[0], 0.0)])
    with pytest.raises(HookPointError, match="head="):
        run_with_patches(model, parts, ids, [Patch(f"blocks.{LAYER}.hook_resid_pre", 0.0, head=0)])


def test_gemma3_conditional_generation_restores_every_config() -> None:
    model = tiny_models.build_any("gemma3_multimodal")
    before = {id(c): c._attn_implementation for c in (model.config, model.config.text_config,
                                                       model.config.vision_config)}
    run_with_cache(model, model_parts(model), _ids(), [f"blocks.{LAYER}.attn.hook_pattern"])
    after = {id(c): c._attn_implementation for c in (model.config, model.config.text_config,
                                                      model.config.vision_config)}
    assert after == before


# --- gradients -----------------------------------------------------------------------------------


def _logit_difference(logits: torch.Tensor) -> torch.Tensor:
    return logits[0, -1, 5] - logits[0, -1, 7]


def test_gradient_through_the_cache_matches_a_hand_hooked_leaf() -> None:
    model = tiny_models.build_any("llama")
    parts = model_parts(model)
    ids = _ids()
    leaf: list[torch.Tensor] = []

    def make_leaf(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple:
        x = args[0].detach().requires_grad_(True)
        leaf.append(x)
        return (x, *args[1:]), kwargs

    handle = parts.blocks[0].register_forward_pre_hook(make_leaf, with_kwargs=True)
    try:
        _logit_difference(model(input_ids=ids, use_cache=False).logits).backward()
    finally:
        handle.remove()
    expected = leaf[0].grad
    assert expected is not None and expected.abs().max() > 0

    name = "blocks.0.hook_resid_pre"
    run = run_with_cache(model, parts, ids, [name], keep_graph=True)
    assert torch.equal(run.logits.detach(), _plain_logits(model, ids))
    (grad,) = torch.autograd.grad(_logit_difference(run.logits), run[name])
    _assert_near(grad, expected, expected)
    some = run_with_cache(model, parts, ids, [name], keep_graph=True, positions=[2, -1])
    (grad_some,) = torch.autograd.grad(_logit_difference(some.logits), some[name])
    _assert_near(grad_some, expected[:, [2, -1]], expected)


@pytest.mark.parametrize("family", ["granite", "gemma2", "gpt2"])
def test_gradient_of_a_sublayer_output_is_the_residual_gradient_after_it(family: str) -> None:
    """resid_post = resid_mid + mlp_out, so d/d mlp_out = d/d resid_post (Granite's scale included)."""
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    names = [f"blocks.{LAYER}.hook_{k}" for k in ("attn_out", "resid_mid", "mlp_out", "resid_post")]
    run = run_with_cache(model, parts, _ids(), names, keep_graph=True, positions=[1, -1])
    grads = torch.autograd.grad(_logit_difference(run.logits), [run[name] for name in names])
    _assert_near(grads[0], grads[1], grads[1])
    _assert_near(grads[2], grads[3], grads[3])
    assert grads[3].abs().max() > 0
    # Keeping the graph changes no value.
    plain = run_with_cache(model, parts, _ids(), names, positions=[1, -1])
    assert torch.equal(run.logits.detach(), plain.logits)
    for name in names:
        assert torch.equal(run[name].detach(), plain[name]), name


@pytest.mark.parametrize("family", ["llama", "gemma2", "granite", "phi"])
def test_gradients_match_finite_differences_in_float64(family: str) -> None:
    """Directional derivatives of a float64 metric on the last residual (logits come back in fp32)."""
    model = tiny_models.build_any(family).double()
    parts = model_parts(model)
    ids = _ids()
    positions = [2, -1]
    final = f"blocks.{parts.n_layers - 1}.hook_resid_post"
    probe = torch.randn(parts.d_model, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def metric(cache: dict[str, torch.Tensor]) -> torch.Tensor:
        return cache[final][0, -1] @ probe

    names = [name for name in _names(parts, LAYER, patterns=False) if not name.endswith("resid_post")]
    run = run_with_cache(model, parts, ids, names + [final], keep_graph=True, positions=positions)
    grads = torch.autograd.grad(metric(run.cache), [run[name] for name in names])
    generator = torch.Generator().manual_seed(11)
    # transformers' RMSNorms and softmax run in fp32 even in a float64 model, so the finite difference
    # is only good to ~0.5% here (measured: at most 0.4%); a missing or doubled path is off by far more.
    eps = 1e-3
    for name, grad in zip(names, grads, strict=True):
        direction = torch.randn(grad.shape, generator=generator, dtype=grad.dtype)
        ends = [
            metric(run_with_patches(
                model, parts, ids, [Patch(name, sign * eps * direction, positions, mode="add")], read=[final],
                positions=positions,
            ).cache)
            for sign in (1.0, -1.0)
        ]
        finite = float(ends[0] - ends[1]) / (2 * eps)
        analytic = float((grad * direction).sum())
        assert abs(analytic - finite) <= 2e-2 * abs(finite), f"{name}: {analytic} vs {finite}"
        assert abs(finite) > 1e-3, name


# --- the same names as TransformerLens -----------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_points_equal_the_transformer_lens_bridge_of_the_same_name(family: str, tmp_path) -> None:
    """The bridge (on a copy) gives the same values under the same names; Gemma's attn_out after its post-norm."""
    from transformer_lens.model_bridge import TransformerBridge

    model = tiny_models.build_any(family)
    model.config.architectures = [type(model).__name__]
    # TransformerLens reloads the tokenizer from its folder to add BOS; give it one.
    tiny_models.build_tokenizer().save_pretrained(tmp_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    bridge = TransformerBridge.boot_transformers(
        f"tiny-{family}", hf_model=copy.deepcopy(model), tokenizer=tokenizer, device="cpu"
    )
    parts = model_parts(model)  # our model was not rewired
    ids = _ids()
    names = _names(parts, LAYER)
    ours = run_with_cache(model, parts, ids, names)
    with torch.no_grad():
        logits, theirs = bridge.run_with_cache(ids)
    _assert_near(ours.logits, logits.float())
    for name in names:
        assert ours[name].shape == theirs[name].shape, name
        _assert_near(ours[name], theirs[name], theirs[name])


# --- a real model ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_points_add_up_and_leave_its_logits_alone(smollm2) -> None:
    model, parts = smollm2.model, model_parts(smollm2.model)
    ids = smollm2.tokenizer("The capital of Germany is", return_tensors="pt")["input_ids"]
    layer = parts.n_layers // 2
    names = _names(parts, layer)
    run = run_with_cache(model, parts, ids, names, positions="last")
    with eager_attention(model):
        assert torch.equal(run.logits, _plain_logits(model, ids))
    assert model.config._attn_implementation == "sdpa"
    pre, post = run[f"blocks.{layer}.hook_resid_pre"], run[f"blocks.{layer}.hook_resid_post"]
    attn, mlp = run[f"blocks.{layer}.hook_attn_out"], run[f"blocks.{layer}.hook_mlp_out"]
    _assert_near(pre + attn + mlp, post, pre, attn, mlp)
    with eager_attention(model):  # the run above was eager: it read patterns
        stack, _ = capture_residuals(model, parts, ids, positions="last")
    assert torch.equal(post, stack[layer + 1])
    assert (parts.n_heads, parts.n_kv_heads) == (9, 3)
    pattern = run[f"blocks.{layer}.attn.hook_pattern"]
    assert pattern.shape == (1, 9, 1, ids.shape[1])
    torch.testing.assert_close(pattern.sum(-1), torch.ones(1, 9, 1), rtol=0, atol=fp32_tol(1.0, pattern.shape[-1]))
