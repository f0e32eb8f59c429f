"""Run the platform's own MRMCaov export through R's MRMCaov and print both side by side.

    python tests/reference/mrmc/check_exports.py RESPONSES.csv [...]

For each responses CSV (the app's export, or any file `python -m app.analysis` reads), this
runs `python -m app.analysis FILE --json --exports DIR`, then the exported `mrmcaov.R` in DIR
with R (MRMCaov installed as ../shared/reference/mrmc/README.md says), and prints, per
endpoint the script computed, our F, df2 and each difference's estimate, SE and CI beside
MRMCaov's, with the largest relative gap on F and SE and the largest absolute gap on a CI
bound. Needs R; not a test (CI has no R), a check to run where R is, as the issue's table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def mrmcaov_output(folder: Path) -> dict[str, dict]:
    """Per endpoint, MRMCaov's F, df2 and differences, from the script's printout."""
    printed = subprocess.run(
        ["Rscript", "-e", "options(width = 10000); source('mrmcaov.R')"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    out: dict[str, dict] = {}
    endpoint = ""
    for k, line in enumerate(printed):
        if line.startswith("== ") and line.endswith(" ==") and "not computed" not in line:
            endpoint = line.strip("= ").strip()
            out[endpoint] = {"differences": {}}
        elif line.startswith("ANOVA global test") and endpoint:
            header, values = printed[k + 1].split(), printed[k + 2].split()[1:]
            row = dict(zip(header, values, strict=True))
            out[endpoint]["F"], out[endpoint]["df2"] = float(row["F"]), float(row["df2"])
        elif "pairwise differences" in line and endpoint and "differences" in out[endpoint]:
            j = k + 2
            while j < len(printed) and printed[j].strip():
                parts = printed[j].split()
                name = " ".join(parts[1:4])
                estimate, se, _df, low, high = map(float, parts[4:9])
                out[endpoint]["differences"].setdefault(name, (estimate, se, low, high))
                j += 1
    return out


def check(path: Path) -> list[str]:
    """The table rows for one responses file."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "app.analysis",
                    str(path),
                    "--json",
                    "--bootstrap",
                    "0",
                    "--exports",
                    str(folder),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["statistics"]["or_hillis"]
        theirs = mrmcaov_output(folder)
    rows = []
    for endpoint, figures in theirs.items():
        mine = ours.get(endpoint)
        if not mine or not mine["available"] or "F" not in figures:
            continue
        if figures["F"] != figures["F"]:  # NaN: some reader has no figure, MRMCaov gives none
            left = ", ".join(f"{i['reader']} ({i['reason']})" for i in mine["left_out"])
            rows.append(
                f"| {path.stem} | {endpoint} | {mine['equality']['F']:.4f} | NaN | "
                f"ours leaves out {left} | | | | |"
            )
            continue
        gap_f = abs(mine["equality"]["F"] / figures["F"] - 1)
        gap_se, gap_ci = 0.0, 0.0
        for d in mine["differences"]:
            _estimate, se, low, high = figures["differences"][d["comparison"]]
            gap_se = max(gap_se, abs(d["se"] / se - 1))
            gap_ci = max(gap_ci, abs(d["ci_low"] - low), abs(d["ci_high"] - high))
        rows.append(
            f"| {path.stem} | {endpoint} | {mine['equality']['F']:.4f} | {figures['F']:.4f} | "
            f"{mine['equality']['df2'] or float('inf'):.3f} | {figures['df2']:.3f} | "
            f"{gap_f:.1e} | {gap_se:.1e} | {gap_ci:.1e} |"
        )
    return rows


def main(paths: list[str]) -> int:
    print(
        "| data | endpoint | F ours | F MRMCaov | df2 ours | df2 MRMCaov | F rel. gap "
        "| SE rel. gap (max) | CI abs. gap (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        for row in check(Path(path).resolve()):
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
