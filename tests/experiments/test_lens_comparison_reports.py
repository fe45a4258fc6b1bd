"""001's reports of a run that compared lenses (``--lens tuned`` / ``--lens linear``, issue 14).

The run folder is ``lens_run_builder``'s synthetic models, turned into tuned and
linear runs by ``lens_comparison_builder`` (the lens-kl CSV and the JSON's
``lens_comparison``). Every check reads the artefacts independently of the report
code: the plot's lines are the CSV, the tables are the JSON, the sentences follow
the numbers, and a norm-only model's reports gain nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from layers_and_logits.reports import write_reports
from layers_and_logits.reports.lens_kl_plot import lens_kl_figure
from layers_and_logits.reports.md_lenses import kl_sentence, rank1_sentence
from layers_core.paths import PROMPTS_DIR, REPO_ROOT
from layers_core.runs.artefacts import artefact_path, read_csv_artefact
from tests.fixtures.lens_comparison_builder import BATTERY_RANK1, add_lens_comparison
from tests.fixtures.lens_run_builder import write_model
from tests.fixtures.markdown_tables import THREE_DECIMALS, code, tables_by_heading

TUNED, LINEAR, NORM_ONLY = "alpha-30l", "beta-18l", "gamma-12l"
SECTION = "## Lenses compared"
LENS_TABLE = "KL to the last layer and the battery's rank-1 depth"


def build_lens_run(folder: Path) -> Path:
    """A tuned run with the battery, a linear run without it, and a norm-only run."""
    folder.mkdir(parents=True, exist_ok=True)
    write_model(folder, TUNED, 30, 49152, facts=True)
    add_lens_comparison(folder, TUNED, lens_mode="tuned")
    write_model(folder, LINEAR, 18, 262144, facts=False, shift=0.12)
    add_lens_comparison(folder, LINEAR, lens_mode="linear", battery=None, cache="hit")
    write_model(folder, NORM_ONLY, 12, 1000, facts=True)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lens run folder with every report written."""
    folder = build_lens_run(tmp_path_factory.mktemp("lens-reports") / "run-latest")
    write_reports(folder)
    return folder


def summary(run_dir: Path, name: str) -> dict:
    return json.loads(artefact_path(run_dir, name, "json").read_text(encoding="utf-8"))


def evaluation(run_dir: Path, name: str) -> str:
    return (run_dir / f"evaluation-{name}.md").read_text(encoding="utf-8")


def assert_3dp(cell: str, value: float | None) -> None:
    if value is None:
        assert cell == "n/a"
        return
    assert THREE_DECIMALS.match(cell), cell
    assert abs(float(cell) - value) <= 5.001e-4, (cell, value)


# --- the plot ------------------------------------------------------------------------------


def test_the_plot_is_written_only_with_the_lens_kl_csv(run_dir: Path) -> None:
    assert (run_dir / f"lenses-{TUNED}.png").stat().st_size > 10_000
    assert (run_dir / f"lenses-{LINEAR}.png").stat().st_size > 10_000
    assert not (run_dir / f"lenses-{NORM_ONLY}.png").exists()


def test_the_plot_draws_the_csv_one_line_per_lens(run_dir: Path) -> None:
    table = read_csv_artefact(artefact_path(run_dir, TUNED, "lens-kl"), frozenset({"lens"}))
    shuffled = table.sample(frac=1.0, random_state=3)  # the plot orders lenses and layers itself
    ax = lens_kl_figure(shuffled, "t", run_lens="tuned").axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["norm lens", "linear shortcut", "tuned lens (this run's lens)"]
    for line, lens in zip(ax.get_lines(), ("norm", "linear", "tuned"), strict=True):
        rows = table[table["lens"] == lens].sort_values("layer")
        assert list(line.get_xdata()) == list(rows["rel_depth"])
        assert list(line.get_ydata()) == list(rows["kl_bits"])
        assert line.get_ydata()[-1] == 0.0  # layer L is the model's head for every lens


# --- the evaluation section -----------------------------------------------------------------


def test_the_section_appears_only_with_lens_comparison(run_dir: Path) -> None:
    for name in (TUNED, LINEAR):
        text = evaluation(run_dir, name)
        assert text.count(SECTION) == 1
        assert text.index("## Fact battery") < text.index(SECTION) < text.index("## Prompts in detail")
        assert f"![lenses](lenses-{name}.png)" in text
    norm_only = evaluation(run_dir, NORM_ONLY)
    assert "Lenses compared" not in norm_only and "lenses-" not in norm_only


def test_the_lens_table_copies_the_json_and_the_csv(run_dir: Path) -> None:
    for name, lenses in ((TUNED, ["norm", "linear", "tuned"]), (LINEAR, ["norm", "linear"])):
        doc = summary(run_dir, name)
        comparison, n_layers = doc["lens_comparison"], doc["diagnostics"]["n_layers"]
        table = read_csv_artefact(artefact_path(run_dir, name, "lens-kl"), frozenset({"lens"}))
        rows = tables_by_heading(evaluation(run_dir, name))[LENS_TABLE]
        assert [code(r["Lens"]) for r in rows] == lenses
        for row in rows:
            lens = code(row["Lens"])
            assert_3dp(row["Mean KL, layers 0..L-1 (bits)"], comparison["mean_kl_bits_layers_0_to_L_minus_1"][lens])
            last = table[(table["lens"] == lens) & (table["layer"] == n_layers)]["kl_bits"].item()
            assert_3dp(row["KL at layer L (bits)"], last)
            battery = comparison["battery_first_rank1"]
            if battery is None:
                assert [row[c] for c in ("Rank-1 median depth", "Q1", "Q3", "Facts reaching rank 1")] == ["not run"] * 4
                continue
            stats = battery[lens]
            for column, key in (("Rank-1 median depth", "median"), ("Q1", "q1"), ("Q3", "q3")):
                assert_3dp(row[column], stats[key])
            assert row["Facts reaching rank 1"] == f"{stats['n_reached']} of {stats['n']}"
        text = evaluation(run_dir, name)
        held = comparison["heldout"]
        assert f"{held['windows']} windows of {held['window']} tokens ({held['tokens']} tokens)" in text


def test_the_fits_table_gives_their_provenance(run_dir: Path) -> None:
    tuned = {code(r["Lens"]): r for r in tables_by_heading(evaluation(run_dir, TUNED))["The fitted maps"]}
    fits = summary(run_dir, TUNED)["lens_comparison"]["fits"]
    assert list(tuned) == ["linear", "tuned"]
    assert tuned["tuned"]["Maps"] == "fitted in this run"
    assert float(tuned["tuned"]["Seconds"]) == fits["tuned"]["seconds"]
    assert "steps 64" in tuned["tuned"]["Recipe"] and "init linear" in tuned["tuned"]["Recipe"]
    assert "(in the JSON: init_recipe)" in tuned["tuned"]["Recipe"]
    assert "objective kl(final||lens), full vocabulary" in tuned["tuned"]["Recipe"]
    linear = tables_by_heading(evaluation(run_dir, LINEAR))["The fitted maps"]
    assert [(code(r["Lens"]), r["Maps"]) for r in linear] == [("linear", "loaded from the cache")]


def test_the_sentences_in_the_report_follow_the_json(run_dir: Path) -> None:
    text = evaluation(run_dir, TUNED)
    assert "- The tuned lens moves the battery's median rank-1 depth from 1.000 to 0.733 (earlier by 0.267)." in text
    means = summary(run_dir, TUNED)["lens_comparison"]["mean_kl_bits_layers_0_to_L_minus_1"]
    assert kl_sentence("tuned", means) in text and "is below the norm lens's" in kl_sentence("tuned", means)
    # 5 of 6 facts reach rank 1 under the linear shortcut, 6 of 6 under the norm lens: the medians say so
    assert ("The linear shortcut moves the battery's median rank-1 depth from 1.000 to 0.900 (earlier by 0.100). "
            "The medians are over different facts: 6 of 6 reach rank 1 under the norm lens, 5 of 6 under the "
            "linear shortcut.") in text
    assert "The fact battery was not run, so the linear shortcut's effect" in evaluation(run_dir, LINEAR)


def _stats(median: float | None, n_reached: int, n: int = 6) -> dict:
    spread = None if median is None else 0.1
    return {"median": median, "q1": None if median is None else median - spread,
            "q3": None if median is None else median, "n": n, "n_reached": n_reached}


@pytest.mark.parametrize(("norm", "tuned", "expected"), [
    (_stats(1.0, 6), _stats(0.733333, 6),
     "The tuned lens moves the battery's median rank-1 depth from 1.000 to 0.733 (earlier by 0.267)."),
    (_stats(0.5, 6), _stats(0.625, 6),
     "The tuned lens moves the battery's median rank-1 depth from 0.500 to 0.625 (later by 0.125)."),
    (_stats(0.8, 6), _stats(0.80004, 6), "The tuned lens leaves the battery's median rank-1 depth unchanged at 0.800."),
    (_stats(0.9, 4), _stats(None, 0),
     "Under the tuned lens no fact of the battery reaches rank 1 (0 of 6); under the norm lens the median rank-1 "
     "depth is 0.900 (4 of 6 facts reach rank 1)."),
    (_stats(None, 0), _stats(0.7, 3),
     "Under the norm lens no fact of the battery reaches rank 1 (0 of 6); under the tuned lens the median rank-1 "
     "depth is 0.700 (3 of 6 facts reach rank 1)."),
    (_stats(None, 0), _stats(None, 0),
     "Under neither the norm lens nor the tuned lens does any fact of the battery reach rank 1 (0 of 6 facts under "
     "each)."),
], ids=["earlier", "later", "unchanged", "never-under-tuned", "never-under-norm", "never-under-either"])
def test_the_rank1_sentence_follows_the_numbers(norm: dict, tuned: dict, expected: str) -> None:
    assert rank1_sentence("tuned", {"norm": norm, "tuned": tuned}) == expected


def test_the_rank1_sentence_without_numbers_says_so() -> None:
    assert rank1_sentence("tuned", None) == ("The fact battery was not run, so the tuned lens's effect on the "
                                             "rank-1 depth is not measured.")
    assert "under the tuned lens is not in the JSON" in rank1_sentence("tuned", {"norm": _stats(1.0, 6)})
    assert "under the norm lens is not in the JSON" in rank1_sentence("linear", {"linear": _stats(1.0, 6)})


@pytest.mark.parametrize(("tuned", "relation"), [
    (0.5, "is below the norm lens's 1.250 bits (by 0.750 bits)."),
    (1.5, "is above the norm lens's 1.250 bits (by 0.250 bits), not below it."),
    (1.25, "is equal to the norm lens's 1.250 bits, not below it."),
])
def test_the_kl_sentence_says_whether_it_is_below_the_norm_lens(tuned: float, relation: str) -> None:
    sentence = kl_sentence("tuned", {"norm": 1.25, "tuned": tuned})
    assert sentence.startswith("The tuned lens's mean KL to the last layer over layers 0..L-1 on held-out text, ")
    assert sentence.endswith(relation)
    assert "not in the JSON" in kl_sentence("tuned", {"norm": 1.25})


def test_json_without_csv_gives_the_section_without_the_plot(tmp_path: Path) -> None:
    write_model(tmp_path, "nocsv", 6, 500, facts=False)
    add_lens_comparison(tmp_path, "nocsv", csv_file=False)
    written = {p.name for p in write_reports(tmp_path)}
    assert "lenses-nocsv.png" not in written
    text = evaluation(tmp_path, "nocsv")
    assert SECTION in text and "`output-nocsv-lens-kl.csv` is missing: no lens plot" in text
    assert {r["KL at layer L (bits)"] for r in tables_by_heading(text)[LENS_TABLE]} == {"n/a"}


def test_csv_without_json_entry_gives_the_plot_without_the_section(tmp_path: Path) -> None:
    write_model(tmp_path, "csvonly", 6, 500, facts=False)
    add_lens_comparison(tmp_path, "csvonly")
    path = artefact_path(tmp_path, "csvonly", "json")
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "lens_comparison": None}),
                    encoding="utf-8")
    written = {p.name for p in write_reports(tmp_path)}
    assert "lenses-csvonly.png" in written
    assert SECTION not in evaluation(tmp_path, "csvonly")


# --- cross-model -----------------------------------------------------------------------------


def test_the_cross_model_tables_compare_models_under_the_same_lens(run_dir: Path) -> None:
    text = (run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8")
    tables = tables_by_heading(text)
    kl_rows = tables["Mean KL to the last layer over layers 0..L-1 (bits)"]
    assert [code(r["Lens"]) for r in kl_rows] == ["norm", "linear", "tuned"]
    assert set(kl_rows[0]) == {"Lens", f"`{TUNED}`", f"`{LINEAR}`"}  # the norm-only model has no column
    for row in kl_rows:
        for name in (TUNED, LINEAR):
            means = summary(run_dir, name)["lens_comparison"]["mean_kl_bits_layers_0_to_L_minus_1"]
            if code(row["Lens"]) in means:
                assert_3dp(row[f"`{name}`"], means[code(row["Lens"])])
            else:
                assert row[f"`{name}`"] == "not compared"  # the linear run has no tuned lens
    assert kl_rows[2][f"`{LINEAR}`"] == "not compared"
    rank_rows = {code(r["Lens"]): r for r in tables["Battery: median rank-1 depth by lens"]}
    for lens, stats in BATTERY_RANK1.items():
        cell = rank_rows[lens][f"`{TUNED}`"]
        assert cell == (f"{stats['median']:.3f} ({stats['q1']:.3f}-{stats['q3']:.3f}; "
                        f"{stats['n_reached']} of {stats['n']})")
        assert rank_rows[lens][f"`{LINEAR}`"] == "not run"
    assert f"No lens comparison for: `{NORM_ONLY}` (lens norm)." in text
    assert text.index("## Fact battery") < text.index(SECTION) < text.index("## Plot")


def test_cross_model_never_and_missing_cells(tmp_path: Path) -> None:
    write_model(tmp_path, "late", 6, 500, facts=True)
    never = {**BATTERY_RANK1, "tuned": {"median": None, "q1": None, "q3": None, "n": 6, "n_reached": 0}}
    add_lens_comparison(tmp_path, "late", battery=never)
    write_reports(tmp_path)
    tables = tables_by_heading((tmp_path / "evaluation-cross-model.md").read_text(encoding="utf-8"))
    rows = {code(r["Lens"]): r["`late`"] for r in tables["Battery: median rank-1 depth by lens"]}
    assert rows["tuned"] == "never (0 of 6)"
    assert rows["norm"] == "1.000 (0.933-1.000; 6 of 6)"


def test_norm_only_runs_have_no_lens_section_anywhere(tmp_path: Path) -> None:
    """Without lens_comparison the cross-model report and LLM prompts are as before: no lens text at all."""
    write_model(tmp_path, "plain", 6, 500, facts=True)
    written = {p.name for p in write_reports(tmp_path)}
    assert not any(name.startswith("lenses-") for name in written)
    for report in ("evaluation-plain.md", "evaluation-cross-model.md"):
        assert "Lenses compared" not in (tmp_path / report).read_text(encoding="utf-8")
    for pack in ("llm-prompt-plain.md", "llm-prompt-cross-model.md"):
        assert "-lens-kl.csv" not in (tmp_path / pack).read_text(encoding="utf-8").split("## Artefacts")[1]


def test_the_lens_section_is_the_only_addition(tmp_path: Path) -> None:
    """The same model with and without a lens comparison (same lens mode): only the section differs."""
    for folder in ("with", "without"):
        (tmp_path / folder).mkdir()
        write_model(tmp_path / folder, "m", 6, 500, facts=True)
    add_lens_comparison(tmp_path / "with", "m", set_lens_mode=False)
    for folder in ("with", "without"):
        write_reports(tmp_path / folder)
    with_lenses = (tmp_path / "with" / "evaluation-m.md").read_text(encoding="utf-8")
    without = (tmp_path / "without" / "evaluation-m.md").read_text(encoding="utf-8")
    start, end = with_lenses.index(SECTION), with_lenses.index("## Prompts in detail")
    assert with_lenses[:start] + with_lenses[end:] == without


# --- the LLM pack, determinism, no torch --------------------------------------------------------


def test_the_llm_prompts_inline_the_lens_kl_csv(run_dir: Path) -> None:
    for name in (TUNED, LINEAR):
        csv_text = artefact_path(run_dir, name, "lens-kl").read_text(encoding="utf-8")
        assert f"### output-{name}-lens-kl.csv\n\n```csv\n{csv_text}```" in (
            run_dir / f"llm-prompt-{name}.md").read_text(encoding="utf-8")
        assert csv_text in (run_dir / "llm-prompt-cross-model.md").read_text(encoding="utf-8")
    assert "lens-kl" not in (run_dir / f"llm-prompt-{NORM_ONLY}.md").read_text(encoding="utf-8").split(
        "## Artefacts")[1]
    for template in ("prompt-single-model-evaluation.txt", "prompt-cross-model-evaluation.txt"):
        text = (PROMPTS_DIR / "001_layers_and_logits" / template).read_text(encoding="utf-8")
        assert "lens_comparison" in text and "lens-kl.csv" in text and "late emergence" in text


def test_regenerating_gives_identical_bytes(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    for path in list(copy.glob("*.md")) + list(copy.glob("*.png")):
        path.unlink()
    write_reports(copy)
    produced = sorted(run_dir.glob("*.md")) + sorted(run_dir.glob("*.png"))
    assert {p.name for p in produced} >= {f"lenses-{TUNED}.png", f"lenses-{LINEAR}.png"}
    for path in produced:
        assert (copy / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_lens_reports_never_import_torch(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    write_model(folder, TUNED, 6, 500, facts=True)
    add_lens_comparison(folder, TUNED)
    script = ("import sys\nfrom pathlib import Path\nfrom layers_and_logits.reports import write_reports\n"
              f"names = {{p.name for p in write_reports(Path({str(folder)!r}))}}\n"
              f"assert 'lenses-{TUNED}.png' in names, names\n"
              "assert 'torch' not in sys.modules, 'the reports imported torch'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            check=False, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
