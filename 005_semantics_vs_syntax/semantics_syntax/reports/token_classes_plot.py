"""``token-classes-<name>.png``: per SAE layer, where the specialists' activation falls by token class.

One panel per SAE: for each token class, the mean share of the specialists' activation
(solid bars) next to the mean share of the tokens in that class (hatched bars), over the
specialists that fire (``token_class_shares``). Syntactic classes are labelled with a
``*``. A class whose solid bar is taller than its hatched one is one the specialists prefer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from layers_core.reports.formats import fmt_at
from layers_core.reports.plot_style import new_figure, save_png
from semantics_syntax.artefact_schema import TOKEN_CLASSES
from semantics_syntax.reports.run_artefacts import SemanticsModel
from semantics_syntax.reports.token_class_shares import class_shares, classes_of
from semantics_syntax.token_classes import SYNTACTIC

WIDTH = 0.4


def token_classes_figure(model: SemanticsModel) -> Figure:
    """One panel per SAE, grouped bars per class."""
    table = model.csv(TOKEN_CLASSES)
    classes = classes_of(table)
    fig = new_figure(max(7.0, 1.5 + 0.75 * len(classes)), 0.6 + 2.6 * len(model.layers))
    axes = np.atleast_1d(fig.subplots(len(model.layers), 1, squeeze=False)[:, 0])
    x = np.arange(len(classes))
    for ax, layer in zip(axes, model.layers, strict=True):
        shares = class_shares(table, layer)
        ax.bar(x - WIDTH / 2, [shares.activation[c] for c in classes], WIDTH, color="C0",
               label="share of specialist activation")
        ax.bar(x + WIDTH / 2, [shares.tokens[c] for c in classes], WIDTH, color="white", edgecolor="C0",
               hatch="///", label="share of tokens")
        ax.set_xticks(x, [f"{c}*" if c in SYNTACTIC else c for c in classes], fontsize=8, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("share")
        ax.set_title(f"residual {fmt_at(layer, model.rel_depth(layer))}: {shares.fired} of {shares.specialists} "
                     "specialists fire", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{model.name}: where the specialists' activation falls, by token class (* syntactic)", fontsize=10)
    return fig


def token_classes_path(run_dir: Path, name: str) -> Path:
    """Where the token-classes plot of a model goes."""
    return run_dir / f"token-classes-{name}.png"


def write_token_classes_plot(model: SemanticsModel, run_dir: Path) -> Path:
    """Draw the token-class bars of one ok model."""
    return save_png(token_classes_figure(model), token_classes_path(run_dir, model.name))
