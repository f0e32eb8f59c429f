# MRMCaov reference figures for reader studies in the neutral long format.
#
# For each CSV (columns reader, case, truth, modality, diagnosis, confidence; one row
# per answer) writes NAME.mrmcaov.json next to this script: per endpoint, MRMCaov's
# OR-Hillis analysis with random readers and random cases (summary() of
# mrmc(..., reader, case)), the fixed-reader analysis (mrmc(..., fixed(reader), case)),
# the OR variance-covariance components and the study design MRMCaov detected.
#
# Usage:
#   Rscript tests/reference/mrmc/run_mrmcaov.R            # the six reference sets
#   Rscript tests/reference/mrmc/run_mrmcaov.R A.csv ...  # the given files
# The three shared sets are read from $MRMC_SHARED_DIR (default
# /work/shared/reference/mrmc); they are skipped with a message where it is absent.
#
# Needs R with MRMCaov (0.3.0 was used) and jsonlite installed; see README.md.

suppressPackageStartupMessages({
  library(MRMCaov)
  library(jsonlite)
})

# MRMCaov's jackknife draws a progress::progress_bar and, after the last case of the
# last reader x test group, calls tick(0) on the finished bar, which stops with
# "!self$finished is not TRUE" whenever that group has no repeated case pattern
# (e.g. on fully crossed data). The bar is only a display: replace it by a silent
# one. MRMCaov's computations are untouched.
silent_bar <- list(new = function(...) {
  list(tick = function(...) invisible(NULL), terminate = function(...) invisible(NULL))
})
utils::assignInNamespace("progress_bar", silent_bar, ns = "progress")

script_dir <- local({
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(arg)) dirname(normalizePath(sub("^--file=", "", arg[1]))) else getwd()
})
shared_dir <- Sys.getenv("MRMC_SHARED_DIR", "/work/shared/reference/mrmc")

versions <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  MRMCaov = as.character(packageVersion("MRMCaov")),
  trust = as.character(packageVersion("trust")),
  jsonlite = as.character(packageVersion("jsonlite"))
)
tool <- sprintf("MRMCaov %s OR-Hillis, random readers and cases", versions$MRMCaov)

MALIGNANT <- c("akiec", "bcc", "mel")
PLACEHOLDER_CASE <- "__placeholder__"

# Rating that rises with the reader's belief that the lesion is in `positive`:
# 6..10 when the reader called it positive (5 + confidence), 1..5 otherwise
# (6 - confidence: a confident negative call is the lowest).
belief_rating <- function(d, positive) {
  called <- d$diagnosis %in% positive
  ifelse(called, 5 + d$confidence, 6 - d$confidence)
}

# Analysis data (columns truth, rating, test, reader, case) and MRMCaov metric per
# endpoint.
endpoint_data <- function(d, endpoint) {
  base <- data.frame(test = d$modality, reader = d$reader, case = d$case,
                     stringsAsFactors = FALSE)
  switch(endpoint,
    proportion_correct = {
      # All real reads are truth 1 (binary_sens keeps only those); one placeholder
      # row per reader x modality with truth 0 and a shared case id gives the truth
      # factor its second level.
      reads <- cbind(base, truth = 1, rating = as.numeric(d$diagnosis == d$truth))
      ph <- unique(base[c("test", "reader")])
      ph$case <- PLACEHOLDER_CASE
      ph$truth <- 0
      ph$rating <- 0
      list(metric = "binary_sens", data = rbind(reads, ph[names(reads)]))
    },
    melanoma_sensitivity = list(metric = "binary_sens", data = cbind(base,
      truth = as.numeric(d$truth == "mel"), rating = as.numeric(d$diagnosis == "mel"))),
    melanoma_specificity = list(metric = "binary_spec", data = cbind(base,
      truth = as.numeric(d$truth == "mel"), rating = as.numeric(d$diagnosis == "mel"))),
    melanoma_auc = list(metric = "empirical_auc", data = cbind(base,
      truth = as.numeric(d$truth == "mel"), rating = belief_rating(d, "mel"))),
    malignant_auc = list(metric = "empirical_auc", data = cbind(base,
      truth = as.numeric(d$truth %in% MALIGNANT), rating = belief_rating(d, MALIGNANT))),
    stop("unknown endpoint ", endpoint)
  )
}
ENDPOINTS <- c("proportion_correct", "melanoma_sensitivity", "melanoma_specificity",
               "melanoma_auc", "malignant_auc")

fit_mrmc <- function(metric, data, fixed_readers = FALSE) {
  call <- if (fixed_readers) {
    bquote(mrmc(.(as.name(metric))(truth, rating), test, fixed(reader), case, data = data))
  } else {
    bquote(mrmc(.(as.name(metric))(truth, rating), test, reader, case, data = data))
  }
  eval(call)
}

analyse <- function(d, endpoint) {
  ep <- endpoint_data(d, endpoint)

  fit <- fit_mrmc(ep$metric, ep$data)
  s <- summary(fit)
  eq <- s$test_equality
  diffs <- s$test_diffs
  vc <- s$vcov_comps

  fit_fr <- fit_mrmc(ep$metric, ep$data, fixed_readers = TRUE)
  # summary() of a fixed-reader fit also builds per-reader differences (not used
  # here), where data.frame() warns that it drops the row names of a named vector.
  s_fr <- withCallingHandlers(summary(fit_fr), warning = function(w) {
    if (grepl("row names were found from a short variable", conditionMessage(w)))
      invokeRestart("muffleWarning")
  })
  eq_fr <- s_fr$test_equality
  diffs_fr <- s_fr$test_diffs

  list(
    means = as.list(setNames(s$test_means$Estimate, rownames(s$test_means))),
    equality = list(F = eq$F, df1 = eq$df1, df2 = eq$df2, p = eq$`p-value`),
    differences = data.frame(
      comparison = diffs$Comparison,
      estimate = diffs$Estimate,
      se = diffs$StdErr,
      df = diffs$df,
      ci_low = diffs$CI[, "Lower"],
      ci_high = diffs$CI[, "Upper"],
      p = diffs$`p-value`
    ),
    fixed_readers = list(
      equality = list(chi2 = eq_fr$X2, df = eq_fr$df, p = eq_fr$`p-value`),
      differences = data.frame(
        comparison = diffs_fr$Comparison,
        estimate = diffs_fr$Estimate,
        se = diffs_fr$StdErr,
        ci_low = diffs_fr$CI[, "Lower"],
        ci_high = diffs_fr$CI[, "Upper"],
        p = diffs_fr$`p-value`
      )
    ),
    covariances = list(
      var = vc["Error", "Estimate"],
      cov1 = vc["Cov1", "Estimate"],
      cov2 = vc["Cov2", "Estimate"],
      cov3 = vc["Cov3", "Estimate"],
      ms_t = eq$`MS(T)`,
      ms_tr = eq$`MS(T:R)`
    ),
    design = fit$design
  )
}

run_file <- function(path) {
  d <- read.csv(path, stringsAsFactors = FALSE, colClasses = c(case = "character"))
  name <- sub("\\.csv$", "", basename(path))
  out <- list(dataset = basename(path), tool = tool, versions = versions)
  failed <- character()
  for (endpoint in ENDPOINTS) {
    out[[endpoint]] <- tryCatch(
      analyse(d, endpoint),
      error = function(e) {
        failed <<- c(failed, endpoint)
        message(sprintf("  %s %s: ERROR %s", name, endpoint, conditionMessage(e)))
        list(error = conditionMessage(e))
      }
    )
    if (!endpoint %in% failed) {
      r <- out[[endpoint]]
      message(sprintf("  %-26s %-21s design %2d  F %9.4f  df2 %8.3f  p %.4g",
                      name, endpoint, r$design, r$equality$F, r$equality$df2,
                      r$equality$p))
    }
  }
  target <- file.path(script_dir, paste0(name, ".mrmcaov.json"))
  writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = 10,
                    na = "null", dataframe = "rows"), target)
  message("wrote ", target)
  length(failed) == 0
}

args <- commandArgs(trailingOnly = TRUE)
paths <- if (length(args)) args else {
  own <- file.path(script_dir, c("per_case_randomised.csv", "initial_revised.csv",
                                 "per_case_subsets.csv"))
  shared <- file.path(shared_dir, c("thesis_study.csv", "crossed_three_arms.csv",
                                    "random_subsets_crossover.csv"))
  if (!dir.exists(shared_dir)) {
    message("shared reference folder ", shared_dir, " absent: skipping its sets")
    shared <- character()
  }
  c(own, shared)
}

ok <- vapply(paths, run_file, logical(1))
if (!all(ok)) {
  message("endpoints failed in: ", paste(basename(paths[!ok]), collapse = ", "))
  quit(status = 1)
}
