"""Files for other MRMC tools, written from answer rows: MRMCaov (CSV + R script) and iMRMC.

Pure (no database): the dashboard's downloads and `python -m app.analysis RESPONSES.csv
--exports DIR` write the same files. Rows are mappings with `reader`, `image_id`, `truth`,
`diagnosis` and the condition: `condition`, or the thesis's `task` (1 = unaided, 2 = se_cbir).

- MRMCaov CSV: one row per reader x case x test with `reader, case, test, truth, rating`
  (`test` = the condition, `truth` 1 for every lesion, `rating` 1 when the diagnosis was
  right) plus `truth_class` and `diagnosis`. MRMCaov's `binary_sens` needs two truth levels,
  so each reader x test also gets one placeholder row, case `PLACEHOLDER_CASE`, truth 0:
  sensitivity ignores truth-0 rows, so the figure stays the proportion correct, and the one
  extra case (read by everyone) leaves the jackknife deviations of the real cases as they
  are. `mrmc(binary_sens(truth, rating), test, reader, case, data = read.csv(...))` loads it
  as it is.
- MRMCaov R script: one file that reads the CSV beside it and runs the primary analysis of
  every endpoint MRMCaov has (proportion correct, melanoma and malignant sensitivity and
  specificity, per-class sensitivity; balanced accuracy is not an MRMCaov metric).
- iMRMC input file: see `imrmc_text`. RJafroc's `DfReadDataFile` reads this format too, but
  only for fully crossed designs (every reader reads every case in every modality): the
  thesis design (each reader a different random subset) and split-plot designs do not load
  in RJafroc; MRMCaov and iMRMC handle them.

Every CSV cell that a spreadsheet would run as a formula (text starting with =, +, -, @, a
tab or a carriage return) is written with a leading apostrophe (`safe_cell`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.analysis.responses import TASK_CONDITIONS
from app.analysis.taxonomy import HAM10000_TAXONOMY, Taxonomy

MRMCAOV_COLUMNS: tuple[str, ...] = (
    "reader",
    "case",
    "test",
    "truth",
    "rating",
    "truth_class",
    "diagnosis",
)
PLACEHOLDER_CASE = "_placeholder_truth0"
# iMRMC's placeholder "non-diseased" cases: iMRMC needs more than two of each truth per reader.
IMRMC_PLACEHOLDERS = 5
IMRMC_PLACEHOLDER_SCORE = "0.5"
# iMRMC reads these as sizes wherever they appear in a header line: keep them out of free text.
IMRMC_SIZE_TOKENS = ("N0:", "N1:", "NR:", "NM:")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate as a formula, made inert with a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as CSV text with a header (missing values empty, extra keys ignored, cells safe)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: safe_cell(value) for key, value in row.items()})
    return buffer.getvalue()


def condition_of(row: Mapping[str, Any]) -> str:
    """The row's condition name (`condition`, else the thesis task mapped to a name)."""
    condition = row.get("condition")
    if condition not in (None, ""):
        return str(condition).strip()
    return TASK_CONDITIONS[int(row["task"])]


def identified(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the rows carry readers' e-mail addresses."""
    return bool(rows) and "reader_email" in rows[0]


def mrmcaov_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The MRMCaov long table: real reads, then one truth-0 placeholder per reader x test."""
    with_email = identified(rows)
    out: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], str] = {}
    for row in rows:
        test = condition_of(row)
        truth = str(row["truth"]).strip().lower()
        diagnosis = str(row["diagnosis"]).strip().lower()
        item = {
            "reader": row["reader"],
            "case": row["image_id"],
            "test": test,
            "truth": 1,
            "rating": int(diagnosis == truth),
            "truth_class": truth,
            "diagnosis": diagnosis,
        }
        if with_email:
            item["reader_email"] = row["reader_email"]
        seen.setdefault((row["reader"], test), row.get("reader_email", ""))
        out.append(item)
    for (reader, test), email in seen.items():
        item = {
            "reader": reader,
            "case": PLACEHOLDER_CASE,
            "test": test,
            "truth": 0,
            "rating": 0,
            "truth_class": "",
            "diagnosis": "",
        }
        if with_email:
            item["reader_email"] = email
        out.append(item)
    return out


def mrmcaov_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The MRMCaov long table as CSV."""
    columns = [*MRMCAOV_COLUMNS, "reader_email"] if identified(rows) else MRMCAOV_COLUMNS
    return write_csv(columns, mrmcaov_rows(rows))


def _r_string(text: str) -> str:
    """`text` as an R string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mrmcaov_script(
    title: str, csv_name: str = "mrmcaov.csv", taxonomy: Taxonomy = HAM10000_TAXONOMY
) -> str:
    """A one-file R script that runs the primary analysis on the MRMCaov CSV beside it
    (melanoma endpoints when the taxonomy has melanoma, malignant vs benign when it flags
    malignancy)."""
    codes = ", ".join(_r_string(c) for c in sorted(taxonomy.malignant))
    mel = _r_string("" if taxonomy.melanoma is None else taxonomy.classes[taxonomy.melanoma])
    safe_title = title.replace("\n", " ")
    return f"""# {safe_title}
# The primary analysis (Obuchowski-Rockette, Hillis df, readers and cases random) with R's
# MRMCaov on {csv_name}, as the platform computes it. Run in the folder holding the CSV:
#   Rscript mrmcaov.R            (or: Rscript mrmcaov.R path/to/{csv_name})
# Needs install.packages("MRMCaov") (0.3.0 checked). Balanced accuracy is not an MRMCaov
# metric and is not repeated here. MRMCaov scales the jackknife by all cases of the study
# where the platform uses the cases each reader's figure is computed on (their own cases; for
# a sensitivity or specificity, the lesions of that class or not of it): on partially paired
# designs, and for sensitivities and specificities where covariances enter (Cov2 > Cov3), F
# and standard errors may differ in the third digit, by a few percent for a rare class (see
# the platform's app/analysis/mrmc.py); the means and estimates agree.
suppressPackageStartupMessages(library(MRMCaov))
args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) > 0) args[1] else "{csv_name}"
df <- read.csv(path, stringsAsFactors = FALSE, na.strings = character(0))

show <- function(name, fit) {{
  cat("\\n==", name, "==\\n")
  print(summary(fit))
}}

# Proportion correct: every lesion has truth 1 and rating 1 when diagnosed right; the truth-0
# placeholder rows only give binary_sens its second truth level.
show("proportion_correct", mrmc(binary_sens(truth, rating), test, reader, case, data = df))

# The other endpoints on the real lesions only. (mrmc() looks its columns up in `data`
# from the top level, so the columns are added here rather than inside a function.)
real <- df[df$truth == 1, ]
malignant <- c({codes})
real$mel_pos <- as.integer(real$truth_class == {mel})
real$mel_call <- as.integer(real$diagnosis == {mel})
real$mal_pos <- as.integer(real$truth_class %in% malignant)
real$mal_call <- as.integer(real$diagnosis %in% malignant)
if (length(unique(real$mel_pos)) == 2) {{
  show("melanoma_sensitivity",
       mrmc(binary_sens(mel_pos, mel_call), test, reader, case, data = real))
  show("melanoma_specificity",
       mrmc(binary_spec(mel_pos, mel_call), test, reader, case, data = real))
}}
if (length(unique(real$mal_pos)) == 2) {{
  show("malignant_sensitivity",
       mrmc(binary_sens(mal_pos, mal_call), test, reader, case, data = real))
  show("malignant_specificity",
       mrmc(binary_spec(mal_pos, mal_call), test, reader, case, data = real))
}}
# Per-class sensitivity. Where some reader saw no lesion of a class MRMCaov gives NaN; the
# platform leaves such readers out of that endpoint instead (and says how many).
for (code in sort(unique(real$truth_class))) {{
  real$pos <- as.integer(real$truth_class == code)
  real$call <- as.integer(real$diagnosis == code)
  fit <- tryCatch(
    mrmc(binary_sens(pos, call), test, reader, case, data = real),
    error = function(e) {{
      cat("\n== sensitivity_", code, " == not computed: ", conditionMessage(e), "\n", sep = "")
      NULL
    }}
  )
  if (!is.null(fit)) show(paste0("sensitivity_", code), fit)
}}
"""


def _header_safe(text: str) -> str:
    """A free-text header line that iMRMC cannot mistake for a size line."""
    if any(token in text.upper() for token in IMRMC_SIZE_TOKENS):
        text = text.replace(":", ";")
    return text


def imrmc_text(title: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The answers as an iMRMC input file: proportion correct per condition (modality).

    iMRMC analyses ROC data (diseased vs non-diseased cases), so proportion correct is
    written the way iMRMC's documentation describes for binary data: every real lesion is a
    "diseased" case (truth row `-1,case,0,1`), a reader's score is 1 if the diagnosis was
    right and 0 if not; five placeholder "non-diseased" cases are scored 0.5 by every reader
    in every modality. Each reader's AUC, the chance that a lesion outscores a placeholder,
    is then exactly that reader's proportion correct. Modalities are numbered in the order
    the conditions first appear (the thesis's Task 1 = 1, Task 2 = 2); readers and cases
    from 1 (RJafroc needs whole numbers); the header lists what each number stands for.
    """
    readers = list(dict.fromkeys(row["reader"] for row in rows))
    images = sorted({row["image_id"] for row in rows})
    conditions = list(dict.fromkeys(condition_of(row) for row in rows))
    if not rows:
        conditions = list(TASK_CONDITIONS.values())
    reader_no = {name: i for i, name in enumerate(readers, start=1)}
    case_no = {image: i for i, image in enumerate(images, start=1)}
    modality_no = {name: i for i, name in enumerate(conditions, start=1)}
    placeholders = range(len(images) + 1, len(images) + 1 + IMRMC_PLACEHOLDERS)
    emails = {row["reader"]: row["reader_email"] for row in rows} if identified(rows) else {}
    first, last = placeholders[0], placeholders[-1]
    header = [
        _header_safe(title),
        "Figure of merit: proportion of lesions diagnosed correctly, analysed as binary MRMC data.",
        "Modalities: "
        + "; ".join(_header_safe(f"{n} = {name}") for name, n in modality_no.items())
        + ".",
        f"Cases 1 to {len(images)} are the study's lesions, all marked as diseased (truth 1);"
        " a reader's score is 1 when the diagnosis was right and 0 when it was wrong.",
        f"Cases {first} to {last} are placeholders, not lesions: marked non-diseased (truth 0)"
        f" and scored {IMRMC_PLACEHOLDER_SCORE} by every reader in every modality; so each"
        " reader's AUC equals that reader's proportion correct.",
        "For R's iMRMC::uStat11.conditionalD use the reader rows of cases"
        f" 1 to {len(images)} only (drop the truth rows and the placeholders).",
        "RJafroc reads this file only for a fully crossed design (every reader, every case,"
        " every modality).",
        "Readers (number = pseudonym):",
        *(
            _header_safe(f"  {number} = {name}" + (f" <{emails[name]}>" if name in emails else ""))
            for name, number in reader_no.items()
        ),
        "Cases (number = image id):",
        *(_header_safe(f"  {number} = {image}") for image, number in case_no.items()),
        f"NR: {len(readers)}",
        f"N0: {IMRMC_PLACEHOLDERS}",
        f"N1: {len(images)}",
        f"NM: {len(conditions)}",
        "BEGIN DATA:",
    ]
    data = [f"-1,{case_no[image]},0,1" for image in images]
    data += [f"-1,{case},0,0" for case in placeholders]
    seen: dict[int, set[int]] = {}  # reader number -> modalities read
    for row in rows:
        number = reader_no[row["reader"]]
        modality = modality_no[condition_of(row)]
        seen.setdefault(number, set()).add(modality)
        correct = int(str(row["diagnosis"]).strip().lower() == str(row["truth"]).strip().lower())
        data.append(f"{number},{case_no[row['image_id']]},{modality},{correct}")
    for number, modalities in seen.items():
        for modality in sorted(modalities):
            data += [
                f"{number},{case},{modality},{IMRMC_PLACEHOLDER_SCORE}" for case in placeholders
            ]
    return "\n".join(header + data) + "\n"
