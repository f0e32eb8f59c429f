"""Plain-text rendering of an analysis result (what `python -m app.analysis` prints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.analysis.tables import pair_words, sides


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


def _reader_section(result: Mapping[str, Any]) -> list[str]:
    """Table 4.II: readers, pooled row, mean and SD."""
    first_key, second_key = sides(result["pair"])
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
            _pct(row[first_key]["accuracy"]),
            _conf(row[first_key]),
            _pct(row[second_key]["accuracy"]),
            _conf(row[second_key]),
        ]
        for row in result["readers"]
    ]
    pooled = result["pooled"]
    rows.append(
        [
            "pooled",
            str(pooled["cases"]),
            _pct(pooled["majority_vote_accuracy"]),
            _pct(pooled[first_key]["accuracy"]),
            _conf(pooled[first_key]),
            _pct(pooled[second_key]["accuracy"]),
            _conf(pooled[second_key]),
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
            mean_sd(first_key),
            "",
            mean_sd(second_key),
            "",
        ]
    )
    first, second = pair_words(result["pair"])
    levels = result["scale"]["levels"]
    return [
        f"Readers (accuracy in %; confidence 1-{levels}; MV = the retrieved images' majority "
        f"vote; T1 = {first}, T2 = {second})",
        *_table(header, rows),
    ]


def _confusion_section(result: Mapping[str, Any], side: int) -> list[str]:
    """The confusion matrix of the pair's first (`side` 0) or second condition (1) with
    totals, then the per-class metrics."""
    confusion = result["confusion"]
    labels = confusion["labels"]
    key = sides(result["pair"])[side]
    matrix = confusion[key]
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
        for c in confusion["classes"][key]
    ]
    name = f"Task {side + 1} ({pair_words(result['pair'])[side]})"
    return [
        f"Confusion matrix, {name}: rows = truth, columns = diagnosis",
        *_table(["truth", *labels, "total"], rows),
        "",
        *_table(["class", "lesions", "diagnosed", "TP", "FP", "sens %", "PPV %"], classes),
    ]


def _changes_section(result: Mapping[str, Any]) -> list[str]:
    """Answer changes from the pair's first condition to its second (Task 1 to Task 2)."""
    ch = result["changes"]
    first, second = pair_words(result["pair"])
    return [
        f"Answer changes, {first} -> {second} ({ch['paired_cases']} cases answered under both)",
        f"  wrong -> correct: {ch['wrong_to_correct']} "
        f"({ch['wrong_to_correct_majority_agrees']} agreeing with the majority vote)",
        f"  correct -> wrong: {ch['correct_to_wrong']} "
        f"({ch['correct_to_wrong_majority_agreed_with_first']} where the majority vote agreed "
        f"with the {first} answer; {ch['correct_to_wrong_majority_agrees']} following it)",
        f"  wrong -> other wrong: {ch['wrong_to_other_wrong']}; unchanged correct: "
        f"{ch['unchanged_correct']}; unchanged wrong: {ch['unchanged_wrong']}",
    ]


def _statistics_section(result: Mapping[str, Any]) -> list[str]:
    """McNemar, Wilcoxon, bootstrap, OR and accuracy by confidence."""
    st = result["statistics"]
    first, second = pair_words(result["pair"])
    lines = [
        f"Descriptive statistics ({second} against {first}, cases answered under both; "
        "pooled tests treat answers as independent, which they are not)"
    ]
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
            f"Secondary: bootstrap, readers then cases ({bs['resamples']} resamples, seed "
            f"{bs['seed']}, small-sample t interval): accuracy gain "
            f"{_pct(d['estimate'])} points, {100 * bs['level']:.0f}% CI "
            f"[{_pct(d['ci_low'])}, {_pct(d['ci_high'])}]"
        )
    return lines + _by_confidence_section(result)


def _by_confidence_section(result: Mapping[str, Any]) -> list[str]:
    """Accuracy at every level of the study's confidence scale, with its labels when known."""
    levels = result["statistics"]["accuracy_by_confidence"]["levels"]
    first_key, second_key = sides(result["pair"])
    labels = result["scale"]["labels"]
    rows = [
        [
            str(a["confidence"]),
            *([labels[a["confidence"] - 1]] if labels else []),
            str(a["answers"]),
            _pct(a["accuracy"]),
            str(b["answers"]),
            _pct(b["accuracy"]),
        ]
        for a, b in zip(levels[first_key], levels[second_key], strict=True)
    ]
    first, second = pair_words(result["pair"])
    header = ["confidence", *(["label"] if labels else [])]
    header += ["T1 answers", "T1 acc %", "T2 answers", "T2 acc %"]
    return [
        f"Accuracy by confidence (a scale of {result['scale']['levels']} levels; "
        f"T1 = {first}, T2 = {second})",
        *_table(header, rows),
    ]


def _primary_section(result: Mapping[str, Any]) -> list[str]:
    """The headline (OR-Hillis per endpoint), every endpoint's table and reader-level tests."""
    lines = []
    if result["probes_left_out"]:
        lines += [
            f"Left out {result['probes_left_out']} faulty-aid probe readings (aids made "
            "misleading on purpose); they are not part of the primary analysis.",
            "",
        ]
    for item in result["left_out"]["readers"]:
        lines.append(f"Left out reader {item['reader']}: {item['reason']}.")
    if result["left_out"]["readers"]:
        lines.append("")
    lines += [
        "Primary analysis: Obuchowski-Rockette with Hillis's df, readers and cases random, "
        "on every answer (each reader's figure per condition on the cases read in it; MRMCaov's "
        "jackknife)",
        *(f"  {h['sentence']}" for h in result["headline"]),
        "",
    ]
    rows = []
    missing = []
    for name, block in result["statistics"]["or_hillis"].items():
        if not block["available"]:
            rows.append([name, "-", "-", "-", "-", "-", "n/a"])
            missing.append(f"  {name}: not available ({block['reason']})")
            continue
        for d in block["differences"]:
            df = "inf" if d["df"] is None else f"{d['df']:.1f}"
            rows.append(
                [
                    name,
                    d["comparison"],
                    _pct(d["estimate"]),
                    f"[{_pct(d['ci_low'])}, {_pct(d['ci_high'])}]",
                    df,
                    _p(d["p"]),
                    str(block["readers"]),
                ]
            )
    lines += _table(
        ["endpoint", "comparison", "diff (points)", "95% CI", "df", "p", "readers"], rows
    )
    lines += missing
    level = result["statistics"]["reader_level"]
    lines += ["", "Reader level (each reader counts once; cases fixed):"]
    for test in [*level["accuracy"], *level["confidence"]]:
        scale = 100 if test["what"] == "accuracy" else 1
        unit = " points" if test["what"] == "accuracy" else ""
        mean = "-" if test["mean_difference"] is None else f"{scale * test['mean_difference']:+.2f}"
        ci = (
            "-"
            if test["ci_low"] is None or test["ci_high"] is None
            else f"[{scale * test['ci_low']:+.2f}, {scale * test['ci_high']:+.2f}]"
        )
        lines.append(
            f"  {test['what']} {test['comparison']}: mean {mean}{unit} {ci}, paired t "
            f"p = {_p(test['p'])}; sign test {test['improved']} of {test['readers']} readers "
            f"up, {test['worsened']} down, p = {_p(test['sign_p'])}"
        )
    return lines


def _reliance_section(result: Mapping[str, Any]) -> list[str]:
    """Reliance on the aid and time per case."""
    lines = ["Reliance on the aid (its vote = the retrieved images' majority vote)"]
    probes = result["reliance"]["probes"]
    if probes["readings"]:
        lines.append(
            f"  faulty-aid probes: {probes['readings']} readings, still right "
            f"{_pct(probes['accuracy'])} %, misleading class adopted "
            f"{probes['misleading_adopted']} times ({_pct(probes['misleading_adopted_share'])} %)"
        )
    for name, block in result["reliance"]["conditions"].items():
        a = block["all"]
        lines.append(
            f"  {name}: accuracy {_pct(a['aided_accuracy_aid_right'])} % when the aid was "
            f"right ({a['aid_right']} cases; {_pct(a['unaided_accuracy_aid_right'])} % "
            f"without it), {_pct(a['aided_accuracy_aid_wrong'])} % when wrong "
            f"({a['aid_wrong']}; {_pct(a['unaided_accuracy_aid_wrong'])} % without it); "
            f"wrong aid adopted {a['wrong_aid_adopted']} times "
            f"({_pct(a['wrong_aid_adopted_share'])} %)"
        )
        aid = block["aid_as_reader"].get("proportion_correct")
        if aid and aid["available"]:
            d = aid["differences"][0]
            lines.append(
                f"    aid alone vs readers, proportion correct: {d['comparison']} "
                f"{_pct(d['estimate'])} points [{_pct(d['ci_low'])}, {_pct(d['ci_high'])}], "
                f"p = {_p(d['p'])}"
            )
    timing = result["timing"]
    lines.append(f"Seconds per case (capped at {timing['ceiling_seconds']:.0f} s)")
    for name, block in timing["conditions"].items():
        t = block["all"]
        lines.append(
            f"  {name}: median {_num(t['median'], 1)} [{_num(t['q1'], 1)}, {_num(t['q3'], 1)}]"
            f" over {t['answers']} answers ({t['capped']} capped)"
        )
    return lines


def render_text(result: Mapping[str, Any]) -> str:
    """The analysis result as readable plain-text tables."""
    sections = [
        _primary_section(result),
        _reader_section(result),
        _confusion_section(result, 0),
        _confusion_section(result, 1),
        _changes_section(result),
        _statistics_section(result),
        _reliance_section(result),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def _effect(value: float, auc: bool) -> str:
    """An effect in its endpoint's unit: AUC with three decimals, else percentage points."""
    return f"{value:.3f} AUC" if auc else f"{100 * value:.1f} points"


def _power_endpoint(block: Mapping[str, Any]) -> list[str]:
    """One endpoint's power grid (readers down, cases across) and cases needed per effect."""
    title = block["label"][:1].upper() + block["label"][1:]
    if not block["available"]:
        return [f"{title}: not available ({block['reason']})"]
    auc = block["kind"] == "auc"
    c = block["components"]
    lines = [
        f"{title}: from {c['readers']} readers, {c['cases']:g} cases per reader; observed "
        + (
            f"{block['comparison']} = {_effect(block['observed_effect'], auc)}"
            if block["observed_effect"] is not None
            else "no difference"
        )
    ]
    for effect in block["effects"]:
        rows = [r for r in block["table"] if r["effect"] == effect]
        cases = sorted({r["cases"] for r in rows})
        readers = sorted({r["readers"] for r in rows})
        power = {(r["readers"], r["cases"]): r["power"] for r in rows}
        lines.append(f"  power (%) to detect {_effect(effect, auc)}, readers x cases per reader:")
        table = _table(
            ["readers", *map(str, cases)],
            [[str(j), *(_pct(power[j, k]) for k in cases)] for j in readers],
        )
        lines += [f"    {line}" for line in table]
        for target in sorted({n["target"] for n in block["needed"]}):
            found = [
                f"{n['readers']} x {n['cases']}"
                for n in block["needed"]
                if n["effect"] == effect and n["target"] == target and n["cases"] is not None
            ]
            lines.append(
                f"    needed for {100 * target:.0f} % power (readers x cases): "
                + (", ".join(found) if found else "none of these reader counts reaches it")
            )
    return lines


def render_power_text(plan: Mapping[str, Mapping[str, Any]]) -> str:
    """A power plan (`power.plan_power`) as readable plain-text tables."""
    alpha = next(iter(plan.values()))["alpha"] if plan else 0.05
    lines = [
        "Power and sample size of the next study (Obuchowski-Rockette with Hillis's df, readers "
        f"and cases random, two-sided alpha {alpha:g}), from this study's variance components:",
        "it compares two conditions and is read as this one was, each reader reading K cases "
        "in each condition.",
    ]
    for block in plan.values():
        lines += ["", *_power_endpoint(block)]
    return "\n".join(lines) + "\n"
