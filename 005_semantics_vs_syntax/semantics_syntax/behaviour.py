"""H3: does a math specialist's activation on a cloze prompt go with the model's log-probability of the answer?

Per SAE, an item's specialist activation is the sum, over the SAE's math specialists (the
``specialist`` ablation targets), of each one's mean activation over the prompt's counted
tokens. Its Spearman correlation with the answer's clean log-probability is measured on
the math items, and on the non-math items as a control (a specialist that tracks only the
domain should say little within it). The total log-probability falls with every answer
token, and what a prompt looks like (digits or words) goes with how many tokens its
answer takes, so a correlation can arise from the token count alone (it does on a
random-weight model); ``controlled=True`` regresses the answer's token count out of both
ranks (``partial_spearman``).
"""

from __future__ import annotations

from collections.abc import Sequence

from layers_core.sae.text_features import TextFeatures
from layers_core.stats.tests_of_claims import Estimate, partial_spearman, spearman
from semantics_syntax.cloze_scoring import EncodedItem, ItemScores


def prompt_activation(prompts: Sequence[TextFeatures], features: Sequence[int]) -> list[float]:
    """Per prompt: the sum of ``features``' mean activations over its counted tokens."""
    return [float(sum(float(p.mean[f]) for f in features)) if p.n_tokens else 0.0 for p in prompts]


def activation_logprob(
    encoded: Sequence[EncodedItem], prompts: Sequence[TextFeatures], clean: ItemScores, features: Sequence[int],
    domain: str, *, controlled: bool = False,
) -> Estimate:
    """Spearman's rho of specialist activation and answer log-probability over one domain's items (module doc)."""
    activation = prompt_activation(prompts, features)
    rows = [i for i, e in enumerate(encoded) if e.item.domain == domain]
    x, y = [activation[i] for i in rows], [float(clean.logprob[i]) for i in rows]
    if controlled:
        return partial_spearman(x, y, [encoded[i].answer_length for i in rows])
    return spearman(x, y)
