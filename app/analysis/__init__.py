"""Analysis of reader-study results: accuracy, confidence, confusion matrices and statistics.

Pure Python/NumPy/SciPy (no Flask, no database), so the dashboard, the exports and the
command line (`python -m app.analysis RESPONSES.csv [--json] [--plots DIR]`) share it.

Input: long-format responses, one row per answer, columns `reader`, `image_id`, `truth`,
`condition` (any names except those of the tables' own figures, such as `readers` or `mean`:
`results.TABLE_FIELDS`; or the thesis's `task`: 1 = `unaided`, 2 = `se_cbir`), `diagnosis`,
`confidence` (1 to N: any scale of 2 to 9 levels, as a study bundle allows), `majority_vote`,
optionally `seconds`; other columns are ignored.

Public API (stable):

- `read_responses(path_or_file, levels=None) -> Responses`: read and validate a CSV (path,
  text or binary file); raises `ResponsesError` naming the row and the column. `levels` is
  the study's number of confidence levels (default: confidences 1 to 9 are accepted).
- `responses_from_rows(rows: Iterable[Mapping]) -> Responses`: the same validation for rows
  already in memory; `responses_from_columns(columns: Mapping[str, Sequence])` for columns
  (e.g. from a database query; the dashboard's way in).
- `analyse(responses, bootstrap=2000, seed=0, taxonomy=None, groups=None, names=None,
  pairs=(), scale=None) -> AnalysisResult`: everything below as a JSON-ready dict typed in
  `results.py`
  (only str, int, float, None, list and dict; accuracies are fractions 0-1; `None` where a
  figure is undefined, e.g. the accuracy of a reader with no answers in a task).
- `render_text(result) -> str`: the result as readable plain-text tables.
- `thesis_keyed(result) -> dict`: the result as the summary JSON download and `--json` write
  it, the pair's tables under the thesis's `task1`/`task2` (see "Keys" below).
- `confusion_svg(matrix, labels, title) -> str`, `confusion_png(matrix, labels, title) -> bytes`:
  heat maps like thesis Figure 4.1 (rows = truth, colour = row share, counts in cells).
- `forest_svg(result, endpoints=None) -> str`, `forest_png(result, endpoints=None) -> bytes`:
  every available endpoint's OR-Hillis differences with their 95% CIs, for a paper.
- `power.plan_power(result, effects=(), alpha=0.05) -> dict[str, EndpointPower]`: power and
  sample size of a next study from the result's OR variance components, every endpoint
  (`power.plan_endpoint(result, endpoint=None)` one); `plots.power_svg(plan)`,
  `plots.power_png(plan)`: power against cases per reader for several reader counts.
- `Taxonomy`, `HAM10000_TAXONOMY`: a study's classes, its melanoma class and malignant flags
  (`taxonomy.py`). Pass a study's own to the readers (`taxonomy=`); the result follows it.
- `Scale`: a study's confidence scale, its number of levels and their labels (`scale.py`).
  Pass its length to the readers (`levels=`) and the scale to `analyse` (`scale=`); without
  one, the scale is the levels present (1 to the highest confidence given).
- `CLASSES` (HAM10000's codes, the default), `COLUMNS`, `Responses`, `ResponsesError`.

Keys of `analyse(...)`:

- `classes`: the taxonomy's class codes, the order of every confusion matrix.
- `left_out`: `readers`, the readers left out of every figure and export, each with the
  reason (`responses.analysed`: no answers in some condition).
- `scale`: the confidence scale, `levels` (N) and `labels` (level 1 first; empty when only
  a responses file was read). Mean confidences are on this 1-to-N scale.
- `probes_left_out`: how many faulty-aid probe readings the input had that the analysis
  left out (`with_probes=False` when reading, the default).
- `conditions`: the conditions, `unaided` first. The descriptive tables below compare two of
  them, first and second (the thesis's Task 1 and Task 2): the first two (`pairs` has
  others); the primary statistics, reliance and timing cover every condition.
- `pair`: which two those are, `first` and `second` (keys) and their readable `names` (the
  dashboard's `?pair=`). Every table of the pair keys a condition's figures by its key: with
  `first, second = tables.sides(pair)` (the keys; `tables.NO_CONDITION`, "", for a side the
  responses have no condition for), `pooled[first]`, `readers[i][second]`,
  `confusion[first]`, `statistics.bootstrap[second]`. The summary JSON and `--json` write
  them under `task1`/`task2` instead, and the changes' `_first`/`second_` names as
  `correct_to_wrong_majority_agreed_with_task1` and `task2_follows_majority`
  (`thesis_keyed`), as they always have.
- `names`: condition key -> the name to show ("SE-CBIR 6", from `names=`; the key where none
  is given), and `aid_alone` -> "the aid alone". Comparisons stay "key - key" in the result;
  pages show them with these names.
- `headline`: per main endpoint and pair of conditions, the primary OR-Hillis result in
  plain words (what the dashboard and the CLI lead with).

- `readers`: per reader `reader`, `cases`, `paired_cases`, `majority_vote_accuracy` (on the
  cases read under either condition of the pair), the pair's first and second condition's
  key -> {`answers`, `correct`, `accuracy`, `confidence`, `confidence_correct`,
  `confidence_wrong`} under it, and `conditions` = condition key -> the same six figures for
  every condition, whatever the pair.
- `pooled`: the same over all answers, plus `mean` and `sd` (the readers' mean and sample
  SD of `majority_vote_accuracy` and of the accuracy under each of the pair's keys).
- `confusion`: `labels`, the pair's two keys -> count matrices (rows = truth), `row_share`
  and `classes` (per-class sensitivity, PPV, false positives) by the same keys, `readers`
  (per reader `reader` and the two keys' matrices).
- `changes`: from the pair's first condition to its second: `wrong_to_correct`,
  `wrong_to_correct_majority_agrees`, `correct_to_wrong`,
  `correct_to_wrong_majority_agreed_with_first` (the majority vote was the first answer),
  `correct_to_wrong_majority_agrees`, ..., `second_follows_majority` (the second answer was
  the majority vote), and the same per reader.
- `statistics`: `or_hillis` (primary: per endpoint `means`, `equality` {F, df1, df2, p},
  `differences` [{comparison, estimate, se, df, ci_low, ci_high, p}], `fixed_readers`,
  the shape of `../shared/reference/mrmc/*.json`), `reader_level` (paired t and sign tests
  over readers), `mcnemar` and `wilcoxon_confidence` (pooled: descriptive only),
  `bootstrap` (secondary: the pair's two keys' accuracies and their `difference`),
  `accuracy_by_confidence` (`levels`: the pair's two keys -> one row per level of the
  scale).
- `reliance`: the aid's vote right vs wrong, wrong aid adopted, the aid alone as a reader.
- `timing`: seconds per answer per condition (median, quartiles, capped at a ceiling).
- `pairs`: "first~second" -> `pair`, `readers`, `pooled`, `confusion`, `changes`, `mcnemar`,
  `wilcoxon_confidence`, `bootstrap` and `accuracy_by_confidence` of the first two conditions
  and of every pair asked for (`pairs=`), computed in this one run. `with_pair(result,
  "a~b")` is the result with that pair's tables at the top level and without `pairs` (what
  the dashboard shows for `?pair=`).

Every section carries a plain-words `description`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.analysis.endpoints import complete_blocks, reading_blocks
from app.analysis.headline import headline
from app.analysis.mrmc import or_hillis_all
from app.analysis.plots import confusion_png, confusion_svg, forest_png, forest_svg
from app.analysis.reliance import AID, reliance
from app.analysis.report import render_text
from app.analysis.responses import (
    CLASSES,
    COLUMNS,
    Responses,
    ResponsesError,
    analysed,
    read_responses,
    responses_from_columns,
    responses_from_rows,
)
from app.analysis.results import AnalysisResult, PairTables
from app.analysis.scale import Scale, scale_of
from app.analysis.stats import (
    bootstrap_accuracy,
    mcnemar_tests,
    reader_level,
    wilcoxon_confidence,
)
from app.analysis.tables import (
    accuracy_by_confidence,
    answer_changes,
    compared,
    confusion_tables,
    pair_key,
    pair_names,
    pair_words,
    paired_cases,
    reader_table,
    thesis_keyed,
    with_pair,
)
from app.analysis.taxonomy import HAM10000_TAXONOMY, Taxonomy
from app.analysis.timing import timing

__all__ = [
    "CLASSES",
    "COLUMNS",
    "HAM10000_TAXONOMY",
    "AnalysisResult",
    "Responses",
    "ResponsesError",
    "Scale",
    "Taxonomy",
    "analyse",
    "confusion_png",
    "confusion_svg",
    "forest_png",
    "forest_svg",
    "read_responses",
    "render_text",
    "responses_from_columns",
    "responses_from_rows",
    "thesis_keyed",
    "with_pair",
]


def analyse(
    responses: Responses,
    bootstrap: int = 2000,
    seed: int = 0,
    taxonomy: Taxonomy | None = None,
    groups: Mapping[str, Mapping[str, str]] | None = None,
    names: Mapping[str, str] | None = None,
    pairs: Sequence[tuple[str, str]] = (),
    scale: Scale | None = None,
) -> AnalysisResult:
    """All tables and statistics of a study as one JSON-ready dict (see the module docstring).

    `groups` (grouping -> reader -> label) splits reliance and time per case; by default the
    readers' profile columns (role, experience band) when the responses have them. `names`
    (condition key -> readable name, e.g. "SE-CBIR 6") names the conditions in the headline's
    sentences and, as `names`, for pages to show comparisons with; the keys stay the keys in
    every comparison and table of the result. The thesis-layout tables and the secondary
    statistics compare two conditions, keyed by their keys: the first two at the top level, and
    under `pairs` ("first~second") those and every pair of condition keys in `pairs`, all in
    this one run. The primary analysis, reliance and timing cover every condition whatever the
    pairs, so that one analysis holds the study's main result and what a page shows for any of
    its pairs (`with_pair`). `scale` is the study's confidence scale (its
    labels shown beside the levels); by default the one the responses were read with, else
    the levels present.
    """
    if groups is None:
        groups = responses.groups
    if taxonomy is None:
        taxonomy = responses.taxonomy
    elif taxonomy.classes != responses.taxonomy.classes:
        raise ValueError(
            "the responses were read with other classes than the taxonomy given: pass the "
            "taxonomy to read_responses / responses_from_rows instead"
        )
    responses, left_out = analysed(responses, names)
    scale = scale_of(responses, scale)
    top = _pair_tables(responses, None, names or {}, scale, bootstrap, seed)
    tables = {pair_key(top["pair"]): top}
    for pair in pairs:
        if f"{pair[0]}~{pair[1]}" not in tables:
            tables[f"{pair[0]}~{pair[1]}"] = _pair_tables(
                responses, pair, names or {}, scale, bootstrap, seed
            )
    blocks = complete_blocks(responses)
    primary = or_hillis_all(reading_blocks(responses), taxonomy)
    return {
        "classes": list(taxonomy.classes),
        "conditions": list(responses.conditions),
        "scale": scale.to_json(),
        "names": {
            **{key: (names or {}).get(key, key) for key in responses.conditions},
            AID: "the aid alone",
        },
        "pair": top["pair"],
        "probes_left_out": responses.probes_left_out,
        "left_out": {
            "description": (
                "Readers whose answers are left out of every figure and every export, and why: "
                "a reader with no answers in a condition has no figure to compare there."
            ),
            "readers": left_out,
        },
        "headline": headline(primary, names),
        "readers": top["readers"],
        "pooled": top["pooled"],
        "confusion": top["confusion"],
        "changes": top["changes"],
        "statistics": {
            "or_hillis": primary,
            "reader_level": reader_level(blocks),
            "mcnemar": top["mcnemar"],
            "wilcoxon_confidence": top["wilcoxon_confidence"],
            "bootstrap": top["bootstrap"],
            "accuracy_by_confidence": top["accuracy_by_confidence"],
        },
        "reader_groups": {name: dict(labels) for name, labels in (groups or {}).items()},
        "reliance": reliance(responses, taxonomy, groups),
        "timing": timing(responses, groups),
        "pairs": tables,
    }


def _pair_tables(
    responses: Responses,
    pair: tuple[str, str] | None,
    names: Mapping[str, str],
    scale: Scale,
    bootstrap: int,
    seed: int,
) -> PairTables:
    """The thesis-layout tables and pooled and secondary statistics of `pair` (None: the
    first two conditions); each pair's bootstrap from the same seed, as a run of its own."""
    chosen = compared(responses.conditions, pair)
    named = pair_names(responses.conditions, pair, names)
    words = pair_words(named)  # the descriptions name the pair
    paired = paired_cases(responses, chosen)
    readers, pooled = reader_table(responses, paired, chosen)
    return {
        "pair": named,
        "readers": readers,
        "pooled": pooled,
        "confusion": confusion_tables(responses, chosen),
        "changes": answer_changes(paired, responses.readers, words),
        "mcnemar": mcnemar_tests(paired, responses.readers),
        "wilcoxon_confidence": wilcoxon_confidence(paired, words),
        "bootstrap": bootstrap_accuracy(
            paired, len(responses.readers), resamples=bootstrap, seed=seed, names=words
        ),
        "accuracy_by_confidence": accuracy_by_confidence(responses, scale, chosen),
    }
