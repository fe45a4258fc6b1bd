"""A loaded model's SAEs from the ``--sae`` sources: trained here (cached), read from a folder, or fetched by release.

``model_saes(loaded, sources, layers=...)`` returns one ``ModelSae`` per SAE, sorted by
residual: for ``train``, one per requested residual (default ~25/50/75/90% of the depth),
trained together on the corpus's training documents (``SOURCE_SHARES`` mix for the
bundled corpus) unless the cache has them, centred where the residual's mean carries
most of its norm (``sae_training.centred_where_needed``, measured on 32 training windows
spread over them; the choice is part of the recipe and so of the cache key); for a folder or release, the SAE after
checking it fits the model (``sae_sources.check_fits``). Two SAEs on one residual are
refused: every artefact is keyed by residual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from layers_core.corpus import Corpus, bundled_corpus, source_shares, split_documents, token_windows
from layers_core.lens.fit_progress import Progress
from layers_core.models.fingerprint import model_fingerprint
from layers_core.models.loading import LoadedModel
from layers_core.sae.sae_cache import SaeIdentity, cached_or_trained
from layers_core.sae.sae_points import SaeMismatchError, default_layers, residual_hook
from layers_core.sae.sae_sources import SaeSource, check_fits, load_sae, release_info
from layers_core.sae.sae_training import SaeRecipe, centred_where_needed, mean_shares, spread_windows, train_saes

DEFAULT_RECIPE = SaeRecipe()


@dataclass(frozen=True)
class ModelSae:
    """One SAE on one residual of the loaded model, and where it came from."""

    layer: int
    hook: str
    sae: Any
    source: dict[str, Any]

    @property
    def d_sae(self) -> int:
        """Its number of features."""
        return int(self.sae.cfg.d_sae)

    @property
    def name(self) -> str:
        """How artefacts name it: ``trained`` for an SAE trained here, else the ``--sae`` text it came from."""
        return "trained" if self.source["kind"] == "train" else str(self.source["spec"])


def _trained(
    loaded: LoadedModel, layers: Sequence[int], recipe: SaeRecipe, corpus: Corpus, device: str,
    status: Callable[[str], None], progress: Progress | None,
) -> list[ModelSae]:
    parts = loaded.parts
    fingerprint, corpus_fingerprint = model_fingerprint(loaded), corpus.fingerprint()
    train_docs, _ = split_documents(corpus)
    windows = token_windows(loaded.tokenizer, train_docs, recipe.window, recipe.windows_needed() * recipe.window,
                            source_shares(corpus))
    shares = mean_shares(loaded.model, parts, spread_windows(windows), layers, batch_size=recipe.forward_batch)
    recipes = {layer: centred_where_needed(recipe, shares[layer]) for layer in layers}
    identities = [SaeIdentity(fingerprint, parts.n_layers, parts.d_model, layer, corpus_fingerprint,
                              recipes[layer].as_dict()) for layer in layers]

    def train(missing: list[int]) -> dict[int, Any]:
        status(f"training SAEs on residuals {', '.join(map(str, missing))} ({recipe.tokens:,} tokens each, "
               f"{recipe.expansion * parts.d_model} features, k {recipe.k}; minutes, once per model)")
        trained: dict[int, Any] = {}
        for chosen in dict.fromkeys(recipes[layer] for layer in missing):  # one stream of reads per recipe
            group = [layer for layer in missing if recipes[layer] == chosen]
            trained |= train_saes(loaded.model, parts, windows, group, chosen, device=loaded.plan.device,
                                  progress=progress)
        return trained

    found = cached_or_trained(identities, train, device, status)
    return [ModelSae(identity.layer, residual_hook(identity.layer, parts.n_layers), found[identity.layer][0],
                     {"kind": "train", "cache": found[identity.layer][1], "folder": str(identity.folder()),
                      "recipe": recipes[identity.layer].as_dict(), "mean_share": round(shares[identity.layer], 4),
                      "corpus": corpus.name, "corpus_fingerprint": corpus_fingerprint})
            for identity in identities]


def model_saes(
    loaded: LoadedModel, sources: Sequence[SaeSource], *, layers: Sequence[int] | None = None,
    recipe: SaeRecipe = DEFAULT_RECIPE, corpus: Corpus | None = None,
    status: Callable[[str], None] = lambda line: None, progress: Progress | None = None,
) -> list[ModelSae]:
    """The model's SAEs from ``sources`` (module doc), sorted by residual.

    Raises:
        SaeMismatchError: An SAE that does not fit the model, a requested residual the model
            lacks, or two SAEs on one residual.
        SaeSourceError: A folder that does not load, a release that cannot be fetched.
    """
    parts, device = loaded.parts, loaded.plan.device
    found: list[ModelSae] = []
    for source in sources:
        if source.kind == "train":
            wanted = list(layers) if layers else default_layers(parts.n_layers)
            for layer in wanted:
                residual_hook(layer, parts.n_layers)  # refuses a residual the model lacks
            found += _trained(loaded, wanted, recipe, corpus or bundled_corpus(), device, status, progress)
            continue
        status(f"loading SAE {source.text}")
        sae = load_sae(source, device)
        layer = check_fits(sae, parts, source)
        found.append(ModelSae(layer, sae.cfg.metadata.hook_name, sae, {**source.describe(), **release_info(source)}))
    layers_seen = [entry.layer for entry in found]
    clashes = sorted({layer for layer in layers_seen if layers_seen.count(layer) > 1})
    if clashes:
        raise SaeMismatchError(f"two SAEs read residual {clashes[0]}; give one SAE per residual")
    return sorted(found, key=lambda entry: entry.layer)
