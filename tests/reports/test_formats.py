"""Number and token formats, and the markdown building blocks every report uses."""

from __future__ import annotations

import math

import pytest

from layers_core.reports.formats import (
    MISSING,
    NEVER,
    fmt_bits,
    fmt_depth,
    fmt_exact,
    fmt_int,
    fmt_milestone,
    fmt_prob,
    fmt_text,
    fmt_token,
    fmt_yes_no,
)
from layers_core.reports.markdown import fenced, md_image, md_table


@pytest.mark.parametrize(("p", "cell"), [(0.80123, "0.8012"), (1.0, "1.000"), (3.1e-05, "3.100e-05"),
                                         (0.0, "0.000"), (None, MISSING), (math.nan, MISSING)])
def test_probabilities_have_four_significant_digits(p: float | None, cell: str) -> None:
    assert fmt_prob(p) == cell


def test_bits_depths_and_integers() -> None:
    assert fmt_bits(15.584963) == "15.585" and fmt_bits(None) == MISSING
    assert fmt_depth(2 / 3) == "0.667" and fmt_depth(math.nan) == MISSING
    assert fmt_int(30.0) == "30" and fmt_int(None) == MISSING


def test_exact_values_are_shown_as_stored() -> None:
    assert fmt_exact(3.2e-07) == "3.2e-07" and fmt_exact(0.1) == "0.1"
    assert fmt_exact(True) == "yes" and fmt_exact(False) == "no" and fmt_exact(6) == "6"
    assert fmt_exact(None) == MISSING
    assert fmt_yes_no(True) == "yes" and fmt_yes_no(None) == MISSING


@pytest.mark.parametrize(("token", "cell"), [(" Berlin", "` Berlin`"), ("a|b", "`a\\|b`"), ("", "(empty)"),
                                             ("`", "`` ` ``"), ("a`b", "``a`b``"), ("nan", "`nan`"),
                                             (None, MISSING)])
def test_tokens_are_code_spans_that_show_spaces_and_survive_tables(token: str | None, cell: str) -> None:
    assert fmt_token(token) == cell


def test_free_text_and_milestones() -> None:
    assert fmt_text("a|b\nc") == "a\\|b c"
    assert fmt_milestone({"layer": 20, "rel_depth": 2 / 3}) == "20 (0.667)"
    assert fmt_milestone({"layer": None, "rel_depth": None}) == NEVER and fmt_milestone(None) == NEVER


def test_markdown_table_image_and_fence() -> None:
    assert md_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert md_image("plot", "heatmap-x.png") == "![plot](heatmap-x.png)"
    assert md_image("plot", "heatmap (1).png") == "![plot](<heatmap (1).png>)"
    assert fenced("x\n", "csv") == "```csv\nx\n```"
    assert fenced("a ```` b", "md") == "`````md\na ```` b\n`````"  # the fence outgrows any backtick run inside
