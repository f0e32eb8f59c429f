"""Plain-text rendering of an analysis result (what `python -m app.analysis` prints)."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal, or a dash."""
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    """A number with fixed decimals, or a dash."""
    return "-" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    """A p-value, small ones in scientific notation."""
    if value is None:
        return "-"
    return f"{value:.2e}" if value < 1e-4 else f"{value:.4f}"


def _conf(block: dict[str, Any]) -> str:
    """Mean confidence with its right/wrong split, as in Table 4.II."""
    return (
        f"{_num(block['confidence'])} "
        f"({_num(block['confidence_correct'])}/{_num(block['confidence_wrong'])})"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others, padded to the widest cell."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(cell).rjust(widths[i + 1]) for i, cell in enumerate(cells[1:])]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), *(line(row) for row in rows)]


def _reader_section(result: dict[str, Any]) -> list[str]:
    """Table 4.II: readers, pooled row, mean and SD."""
    header = [
        "reader",
        "cases",
        "MV acc",
        "T1 acc",
        "T1 conf (right/wrong)",
        "T2 acc",
        "T2 conf (right/wrong)",
    ]
    rows = [
        [
            row["reader"],
            str(row["cases"]),
            _pct(row["majority_vote_accuracy"]),
            _pct(row["task1"]["accuracy"]),
            _conf(row["task1"]),
            _pct(row["task2"]["accuracy"]),
            _conf(row["task2"]),
        ]
        for row in result["readers"]
    ]
    pooled = result["pooled"]
    rows.append(
        [
            "pooled",
            str(pooled["cases"]),
            _pct(pooled["majority_vote_accuracy"]),
            _pct(pooled["task1"]["accuracy"]),
            _conf(pooled["task1"]),
            _pct(pooled["task2"]["accuracy"]),
            _conf(pooled["task2"]),
        ]
    )
    mean, sd = pooled["mean"], pooled["sd"]

    def mean_sd(key: str) -> str:
        return f"{_pct(mean[key])} +/- {_pct(sd[key])}"

    rows.append(
        [
            "mean +/- sd",
            "",
            mean_sd("majority_vote_accuracy"),
            mean_sd("task1"),
            "",
            mean_sd("task2"),
            "",
        ]
    )
    return [
        "Readers (accuracy in %; confidence 1-5; MV = the retrieved images' majority vote)",
        *_table(header, rows),
    ]


def _confusion_section(result: dict[str, Any], task: str) -> list[str]:
    """One confusion matrix with totals, then the per-class metrics."""
    confusion = result["confusion"]
    labels = confusion["labels"]
    matrix = confusion[task]
    rows = [
        [label, *map(str, counts), str(sum(counts))]
        for label, counts in zip(labels, matrix, strict=True)
    ]
    columns = [str(sum(col)) for col in zip(*matrix, strict=True)]
    rows.append(["total", *columns, str(sum(map(sum, matrix)))])
    classes = [
        [
            c["label"],
            str(c["lesions"]),
            str(c["diagnosed"]),
            str(c["true_positives"]),
            str(c["false_positives"]),
            _pct(c["sensitivity"]),
            _pct(c["ppv"]),
        ]
        for c in confusion["classes"][task]
    ]
    name = "Task 1 (image only)" if task == "task1" else "Task 2 (with retrieved images)"
    return [
        f"Confusion matrix, {name}: rows = truth, columns = diagnosis",
        *_table(["truth", *labels, "total"], rows),
        "",
        *_table(["class", "lesions", "diagnosed", "TP", "FP", "sens %", "PPV %"], classes),
    ]


def _changes_section(result: dict[str, Any]) -> list[str]:
    """Answer changes from Task 1 to Task 2."""
    ch = result["changes"]
    return [
        f"Answer changes, Task 1 -> Task 2 ({ch['paired_cases']} cases answered in both tasks)",
        f"  wrong -> correct: {ch['wrong_to_correct']} "
        f"({ch['wrong_to_correct_majority_agrees']} agreeing with the majority vote)",
        f"  correct -> wrong: {ch['correct_to_wrong']} "
        f"({ch['correct_to_wrong_majority_agreed_with_task1']} where the majority vote agreed "
        f"with the Task 1 answer; {ch['correct_to_wrong_majority_agrees']} following it)",
        f"  wrong -> other wrong: {ch['wrong_to_other_wrong']}; unchanged correct: "
        f"{ch['unchanged_correct']}; unchanged wrong: {ch['unchanged_wrong']}",
    ]


def _statistics_section(result: dict[str, Any]) -> list[str]:
    """McNemar, Wilcoxon, bootstrap, OR and accuracy by confidence."""
    st = result["statistics"]
    lines = ["Statistics (Task 2 against Task 1, cases answered in both tasks)"]
    mc = st["mcnemar"]
    rows = [
        [
            m["reader"],
            str(m["correct_to_wrong"]),
            str(m["wrong_to_correct"]),
            _num(m["statistic"]),
            _p(m["p_value"]),
            m["method"],
        ]
        for m in [*mc["readers"], {"reader": "pooled", **mc["pooled"]}]
    ]
    lines += [
        "McNemar's test",
        *_table(["reader", "right->wrong", "wrong->right", "statistic", "p", "method"], rows),
    ]
    w = st["wilcoxon_confidence"]
    lines.append(
        f"Wilcoxon signed-rank on confidence: {w['pairs']} pairs ({w['increased']} up, "
        f"{w['decreased']} down), mean change {_num(w['mean_difference'])}, "
        f"W = {_num(w['statistic'], 1)}, p = {_p(w['p_value'])} ({w['method']})"
    )
    bs = st["bootstrap"]
    if bs.get("difference"):
        d = bs["difference"]
        lines.append(
            f"Bootstrap ({bs['resamples']} resamples, seed {bs['seed']}): accuracy gain "
            f"{_pct(d['estimate'])} points, {100 * bs['level']:.0f}% CI "
            f"[{_pct(d['ci_low'])}, {_pct(d['ci_high'])}]"
        )
    orr = st["obuchowski_rockette"]
    if orr.get("available"):
        ddf = "inf" if orr["ddf"] is None else f"{orr['ddf']:.1f}"
        lines.append(
            f"Obuchowski-Rockette (Hillis ddf), {orr['readers']} readers: gain "
            f"{_pct(orr['difference'])} points, {100 * orr['level']:.0f}% CI "
            f"[{_pct(orr['ci_low'])}, {_pct(orr['ci_high'])}], F(1, {ddf}) = "
            f"{_num(orr['f'])}, p = {_p(orr['p_value'])}"
        )
    else:
        lines.append(f"Obuchowski-Rockette: not computed ({orr.get('reason')})")
    by_conf = st["accuracy_by_confidence"]
    rows = [
        [
            str(a["confidence"]),
            str(a["answers"]),
            _pct(a["accuracy"]),
            str(b["answers"]),
            _pct(b["accuracy"]),
        ]
        for a, b in zip(by_conf["task1"], by_conf["task2"], strict=True)
    ]
    lines += [
        "Accuracy by confidence",
        *_table(["confidence", "T1 answers", "T1 acc %", "T2 answers", "T2 acc %"], rows),
    ]
    return lines


def render_text(result: dict[str, Any]) -> str:
    """The analysis result as readable plain-text tables."""
    sections = [
        _reader_section(result),
        _confusion_section(result, "task1"),
        _confusion_section(result, "task2"),
        _changes_section(result),
        _statistics_section(result),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
