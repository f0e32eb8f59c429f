"""Files for other MRMC tools, written from the analysed answers: MRMCaov (CSV + R script), iMRMC.

Pure (no database): the dashboard's downloads and `python -m app.analysis RESPONSES.csv
--exports DIR` write the same files, from the same `Responses` the analysis reads after
`responses.analysed` (probes and readers left out, initial-then-revised first looks as
readings of their own): every figure and every file holds the same answers.

- MRMCaov CSV: one row per reader x case x test with `reader, case, test, truth, rating`
  (`test` = the condition, `truth` 1 for every lesion, `rating` 1 when the diagnosis was
  right) plus `truth_class`, `diagnosis`, `confidence` and the ROC ratings `mel_rating`,
  `mal_rating`. MRMCaov's `binary_sens` needs two truth levels, so each reader x test also
  gets one placeholder row, case `PLACEHOLDER_CASE`, truth 0: sensitivity drops truth-0
  rows before its jackknife, so the figure and its variance stay those of the proportion
  correct. `mrmc(binary_sens(truth, rating), test, reader, case, data = read.csv(...))`
  loads it as it is.
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

import numpy as np

from app.analysis.endpoints import roc_rating
from app.analysis.responses import TASK_CONDITIONS, Responses
from app.analysis.taxonomy import HAM10000_TAXONOMY, Taxonomy

MRMCAOV_COLUMNS: tuple[str, ...] = (
    "reader",
    "case",
    "test",
    "truth",
    "rating",
    "truth_class",
    "diagnosis",
    "confidence",
    "mel_rating",
    "mal_rating",
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


def rating_top(responses: Responses) -> int:
    """The top of the confidence scale as the ROC ratings use it (`endpoints.roc_rating`)."""
    return int(responses.confidence.max()) if len(responses) else 5


def mrmcaov_rows(
    responses: Responses, emails: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The MRMCaov long table of the analysed answers (`responses.analysed`): real reads, then
    one truth-0 placeholder per reader x test. `mel_rating` and `mal_rating` are the ROC
    ratings of the melanoma and malignant-vs-benign AUCs (`endpoints.roc_rating`)."""
    taxonomy = responses.taxonomy
    classes = taxonomy.classes
    top = rating_top(responses)
    mel = taxonomy.melanoma
    malignant = set(taxonomy.malignant_indexes) if taxonomy.splits_malignancy else set()
    out: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], None] = {}
    for k in range(len(responses)):
        reader = responses.readers[responses.reader[k]]
        test = responses.conditions[responses.condition[k]]
        truth, diagnosis = int(responses.truth[k]), int(responses.diagnosis[k])
        confidence = int(responses.confidence[k])
        item = {
            "reader": reader,
            "case": responses.image_ids[responses.image[k]],
            "test": test,
            "truth": 1,
            "rating": int(diagnosis == truth),
            "truth_class": classes[truth],
            "diagnosis": classes[diagnosis],
            "confidence": confidence,
            "mel_rating": "" if mel is None else _rating(diagnosis == mel, confidence, top),
            "mal_rating": _rating(diagnosis in malignant, confidence, top) if malignant else "",
        }
        if emails is not None:
            item["reader_email"] = emails.get(reader, "")
        seen.setdefault((reader, test), None)
        out.append(item)
    for reader, test in seen:
        item = {"reader": reader, "case": PLACEHOLDER_CASE, "test": test, "truth": 0, "rating": 0}
        if emails is not None:
            item["reader_email"] = emails.get(reader, "")
        out.append(item)
    return out


def _rating(called: bool, confidence: int, top: int) -> int:
    """One reading's ROC rating (`endpoints.roc_rating`, the one home of the rule)."""
    return int(roc_rating(np.asarray(called), np.asarray(confidence), top))


def mrmcaov_csv(responses: Responses, emails: Mapping[str, str] | None = None) -> str:
    """The MRMCaov long table as CSV (with `reader_email` when `emails` are given)."""
    columns = [*MRMCAOV_COLUMNS, "reader_email"] if emails is not None else MRMCAOV_COLUMNS
    return write_csv(columns, mrmcaov_rows(responses, emails))


def _r_string(text: str) -> str:
    """`text` as an R string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _r_comment(text: str) -> str:
    """`text` on one line, safe inside an R comment."""
    return " ".join(text.split())


def mrmcaov_script(
    title: str,
    csv_name: str = "mrmcaov.csv",
    taxonomy: Taxonomy = HAM10000_TAXONOMY,
    left_out: Sequence[Mapping[str, str]] = (),
) -> str:
    """A one-file R script that runs the primary analysis on the MRMCaov CSV beside it, every
    endpoint MRMCaov has, to the end on every design (an endpoint MRMCaov cannot compute says
    why and the script goes on). `left_out` names the readers the analysis left out."""
    codes = ", ".join(_r_string(c) for c in sorted(taxonomy.malignant))
    mel = _r_string("" if taxonomy.melanoma is None else taxonomy.classes[taxonomy.melanoma])
    gone = "\n".join(
        f"#   {_r_comment(item['reader'])}: {_r_comment(item['reason'])}" for item in left_out
    )
    left = (
        "# Readers left out of the analysis, and so of the CSV:\n" + gone
        if left_out
        else "# No reader was left out: the CSV holds every answer the platform analysed."
    )
    return f"""# {_r_comment(title)}
# The primary analysis (Obuchowski-Rockette, Hillis df, readers and cases random) with R's
# MRMCaov on {_r_comment(csv_name)}: the answers the platform analysed. Run it in the folder
# holding the CSV:
#   Rscript mrmcaov.R            (or: Rscript mrmcaov.R path/to/{_r_comment(csv_name)})
# Needs install.packages("MRMCaov") (0.3.0 checked). The platform computes MRMCaov's own
# jackknife (over the study's cases that each endpoint counts: a sensitivity's own lesions,
# a specificity's others, scaled by (n - 1)/n), so the means, F, standard errors and
# intervals printed here equal the platform's to rounding, on every design (its tests check
# them against MRMCaov 0.3.0). Balanced accuracy is not an MRMCaov metric and is not here.
{left}
suppressPackageStartupMessages(library(MRMCaov))
# MRMCaov 0.3.0's jackknife ticks its progress bar once more after the bar has completed when
# the last reader read every case in the last test, which stops R ("!self$finished"). A
# silent bar (this session only) lets every endpoint run.
utils::assignInNamespace("progress_bar", list(new = function(...) list(
  tick = function(...) invisible(NULL), terminate = function(...) invisible(NULL)
)), ns = "progress")
args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) > 0) args[1] else "{_r_comment(csv_name)}"
df <- read.csv(path, stringsAsFactors = FALSE, na.strings = character(0))

show <- function(name, fit) {{
  result <- tryCatch(summary(fit), error = function(e) e)
  if (inherits(result, "error")) {{
    cat("\\n== ", name, " == not computed: ", conditionMessage(result), "\\n", sep = "")
  }} else {{
    cat("\\n==", name, "==\\n")
    print(result)
  }}
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
# ROC: mel_rating and mal_rating rise with the reader's belief (called with confidence c:
# top + c; anything else: top + 1 - c), as the platform rates them.
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
if (length(unique(real$mel_pos)) == 2) {{
  show("melanoma_auc",
       mrmc(empirical_auc(mel_pos, mel_rating), test, reader, case, data = real))
}}
if (length(unique(real$mal_pos)) == 2) {{
  show("malignant_auc",
       mrmc(empirical_auc(mal_pos, mal_rating), test, reader, case, data = real))
}}
# Per-class sensitivity. Where some reader saw fewer than 2 lesions of a class in a test,
# MRMCaov cannot compute it; the platform leaves such readers out of that endpoint instead
# (and names them).
for (code in sort(unique(real$truth_class))) {{
  real$pos <- as.integer(real$truth_class == code)
  real$call <- as.integer(real$diagnosis == code)
  fit <- tryCatch(
    mrmc(binary_sens(pos, call), test, reader, case, data = real),
    error = function(e) {{
      cat("\\n== sensitivity_", code, " == not computed: ", conditionMessage(e), "\\n", sep = "")
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


def imrmc_text(title: str, responses: Responses, emails: Mapping[str, str] | None = None) -> str:
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
    rows = list(responses.rows())
    readers = list(dict.fromkeys(row["reader"] for row in rows))
    images = sorted({row["image_id"] for row in rows})
    conditions = list(responses.conditions) if rows else list(TASK_CONDITIONS.values())
    reader_no = {name: i for i, name in enumerate(readers, start=1)}
    case_no = {image: i for i, image in enumerate(images, start=1)}
    modality_no = {name: i for i, name in enumerate(conditions, start=1)}
    placeholders = range(len(images) + 1, len(images) + 1 + IMRMC_PLACEHOLDERS)
    emails = emails or {}
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
