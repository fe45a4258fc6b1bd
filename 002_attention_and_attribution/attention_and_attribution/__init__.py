"""Experiment 002's own analysis: which heads and MLPs write the answer, and what they read.

What they write: ``direct_attribution`` (each component's direct contribution to the
answer's logit or the answer − foil difference at the answer position, exact: through
the final norm with its scale frozen from the same forward pass, ``frozen_norm``, on
the residual stream split into components, ``residual_components``). What they read:
``attention_roles`` on ``token_roles`` (the answer position's attention by token role).
"""
