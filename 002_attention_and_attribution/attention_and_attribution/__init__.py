"""Experiment 002's own analysis: which heads and MLPs write the answer, and what they read.

What they write: the shared library's ``layers_core.attribution`` (each component's
direct contribution to the answer's logit or the answer − foil difference at the
answer position, exact; 003 uses it too). What they read:
``attention_roles`` on ``token_roles`` (the answer position's attention by token role).
"""
