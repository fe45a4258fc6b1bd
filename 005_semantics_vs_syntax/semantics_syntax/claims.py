"""The seed's claims 005 can test, and the rule by which each is called held: one source for run and reports.

``SEED_CLAIMS`` is what the hypotheses table writes in ``seed_claim``; ``HELD_RULES`` says in
words what ``hypotheses`` applies to fill ``held`` (the reports quote it). A measure with a
claim must have a rule and the other way round (a test checks both, and the thresholds).
"""

from __future__ import annotations

SEED_CLAIMS: dict[str, str] = {
    "form_jaccard": "0.13-0.18",
    "syntactic_activation_share": "0.96",
    "topic_clustering_sae": "within 0.503 vs across 0.137",
    "topic_clustering_residual": "within 0.503 vs across 0.137",
    "activation_logprob_rho_math": "rho 0.35-0.47, all significant",
    "max_flip_rate_math": "<= 0.049",
    "selectivity_vs_effect_rho": "-0.546",
}

HELD_RULES: dict[str, str] = {
    "form_jaccard": "held when the mean Jaccard overlap lies in 0.13-0.18 (its bootstrap interval is shown beside "
                    "it)",
    "syntactic_activation_share": "held when the mean share of specialist activation on syntactic tokens is at "
                                  "least 0.9",
    "topic_clustering_sae": "held when the topic effect (within - across) is positive with p_holm < 0.05",
    "topic_clustering_residual": "held when the topic effect (within - across) is positive with p_holm < 0.05",
    "activation_logprob_rho_math": "held when rho > 0 with p_holm < 0.05",
    "max_flip_rate_math": "held when the largest flip rate of a specialist on math items is at most 0.049",
    "selectivity_vs_effect_rho": "held when rho < 0 with p < 0.05 (one test per model, no Holm adjustment)",
}
