# RJafroc's power and sample size for the reference reader studies.
#
# Writes rjafroc_power.json next to this script:
#
# 1. "components": for each reference set and endpoint, RJafroc's
#    SsPowerGivenJK(dataset = NULL, ..., method = "OR") (random readers and cases)
#    over a grid of readers J, cases K and effects, and SsSampleSizeKGivenJ for
#    80 % and 90 % power, from the OR variance components that MRMCaov computed
#    for that set (tests/reference/mrmc/NAME.mrmcaov.json: var, cov1, cov2, cov3,
#    ms_tr), with VarTR = MS(T:R) - Var + Cov1 + max(Cov2 - Cov3, 0) (Hillis 2011
#    eq. 9, RJafroc's UtilORVarComponentsFactorial) and KStar = the mean over
#    readers of the cases a reader read in one modality (the largest of its
#    modalities), read from the set's CSV here.
# 2. "datasets": RJafroc end to end on fully crossed data: the two modalities
#    `unaided` and `se_cbir` of crossed_three_arms as an RJafroc ROC dataset (the
#    melanoma and malignant-vs-benign ratings of run_mrmcaov.R), and
#    SsPowerGivenJK(dataset, FOM = "Wilcoxon") with its own jackknife variance
#    components and the observed effect, plus UtilORVarComponentsFactorial's
#    components.
#
# Usage: Rscript tests/reference/power/run_rjafroc.R
# Needs R with RJafroc (2.1.2 was used) and jsonlite installed; see README.md.
# The shared sets are read from $MRMC_SHARED_DIR (default
# /work/shared/reference/mrmc); they are skipped with a message where it is absent.

suppressPackageStartupMessages({
  library(RJafroc)
  library(jsonlite)
})

script_dir <- local({
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(arg)) dirname(normalizePath(sub("^--file=", "", arg[1]))) else getwd()
})
mrmc_dir <- file.path(dirname(script_dir), "mrmc")
shared_dir <- Sys.getenv("MRMC_SHARED_DIR", "/work/shared/reference/mrmc")

versions <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  RJafroc = as.character(packageVersion("RJafroc")),
  jsonlite = as.character(packageVersion("jsonlite"))
)

ENDPOINTS <- c("proportion_correct", "melanoma_sensitivity", "melanoma_specificity",
               "melanoma_auc", "malignant_auc")
READERS <- c(3, 5, 10)
CASES <- c(25, 50, 100, 200)
EXTRA_EFFECTS <- c(0.05, 0.1)
TARGETS <- c(0.8, 0.9)
SIZE_READERS <- c(5, 10)
MALIGNANT <- c("akiec", "bcc", "mel")

# The mean over readers of the cases a reader read in one modality (its largest).
k_star <- function(d) {
  per <- aggregate(case ~ reader + modality, data = unique(d[c("reader", "modality", "case")]),
                   FUN = length)
  mean(tapply(per$case, per$reader, max))
}

components_of <- function(cv, KStar) {
  list(KStar = KStar,
       VarTR = cv$ms_tr - cv$var + cv$cov1 + max(cv$cov2 - cv$cov3, 0),
       Cov1 = cv$cov1, Cov2 = cv$cov2, Cov3 = cv$cov3, Var = cv$var)
}

power_rows <- function(vc, effects) {
  grid <- expand.grid(effect = effects, J = READERS, K = CASES)
  rows <- lapply(seq_len(nrow(grid)), function(i) {
    g <- grid[i, ]
    r <- SsPowerGivenJK(dataset = NULL, FOM = "Wilcoxon", J = g$J, K = g$K,
                        effectSize = g$effect, method = "OR", vc)
    data.frame(effect = g$effect, readers = g$J, cases = g$K, power = r$powerRRRC,
               df2 = r$df2RRRC, ncp = r$ncpRRRC)
  })
  do.call(rbind, rows)
}

size_rows <- function(vc, effects) {
  grid <- expand.grid(effect = effects, target = TARGETS, J = SIZE_READERS)
  rows <- lapply(seq_len(nrow(grid)), function(i) {
    g <- grid[i, ]
    r <- SsSampleSizeKGivenJ(dataset = NULL, J = g$J, effectSize = g$effect,
                             method = "OR", desiredPower = g$target, vc)
    data.frame(effect = g$effect, target = g$target, readers = g$J, cases = r$KRRRC,
               power = r$powerRRRC)
  })
  do.call(rbind, rows)
}

run_set <- function(csv, reference) {
  d <- read.csv(csv, stringsAsFactors = FALSE, colClasses = c(case = "character"))
  ref <- fromJSON(reference, simplifyVector = FALSE)
  KStar <- k_star(d)
  out <- list()
  for (endpoint in ENDPOINTS) {
    e <- ref[[endpoint]]
    vc <- components_of(e$covariances, KStar)
    first <- e$differences[[1]]
    observed <- abs(first$estimate)
    effects <- c(observed, EXTRA_EFFECTS)
    out[[endpoint]] <- list(
      comparison = first$comparison,
      observed_effect = observed,
      components = vc,
      power = power_rows(vc, effects),
      sample_size = size_rows(vc, effects)
    )
    message(sprintf("  %-26s %-21s KStar %6.1f  VarTR %.3g  power(J=5,K=100,obs) %.4f",
                    basename(csv), endpoint, KStar, vc$VarTR,
                    out[[endpoint]]$power$power[out[[endpoint]]$power$readers == 5 &
                      out[[endpoint]]$power$cases == 100 &
                      out[[endpoint]]$power$effect == observed]))
  }
  out
}

# An RJafroc ROC dataset of two modalities of a fully crossed set: non-diseased
# (NL) and diseased (LL) ratings, modality x reader x case.
roc_dataset <- function(d, modalities, positive) {
  d <- d[d$modality %in% modalities, ]
  called <- d$diagnosis %in% positive
  d$rating <- ifelse(called, 5 + d$confidence, 6 - d$confidence)
  readers <- sort(unique(d$reader))
  cases <- sort(unique(d$case))
  truth <- setNames(d$truth[match(cases, d$case)] %in% positive, cases)
  neg <- cases[!truth]
  pos <- cases[truth]
  fill <- function(which) {
    a <- array(NA_real_, c(length(modalities), length(readers), length(which)))
    for (i in seq_along(modalities)) for (j in seq_along(readers)) {
      s <- d[d$modality == modalities[i] & d$reader == readers[j], ]
      a[i, j, ] <- s$rating[match(which, s$case)]
    }
    stopifnot(!anyNA(a))  # fully crossed
    a
  }
  ds <- Df2RJafrocDataset(fill(neg), fill(pos))
  # Df2RJafrocDataset leaves the truth table NA, which RJafroc's jackknife needs:
  # normal cases first (column 1), then the diseased (column 2), as in its own
  # datasets (e.g. dataset02).
  K1 <- length(neg)
  K <- K1 + length(pos)
  truth_table <- array(NA_real_, c(length(modalities), length(readers), K, 2))
  truth_table[, , seq_len(K1), 1] <- 1
  truth_table[, , (K1 + 1):K, 2] <- 1
  ds$descriptions$truthTableStr <- truth_table
  ds
}

run_dataset <- function(csv, modalities, endpoint, positive) {
  d <- read.csv(csv, stringsAsFactors = FALSE, colClasses = c(case = "character"))
  ds <- roc_dataset(d, modalities, positive)
  vc <- UtilORVarComponentsFactorial(ds, FOM = "Wilcoxon")$VarCom
  foms <- UtilFigureOfMerit(ds, FOM = "Wilcoxon")
  grid <- expand.grid(J = READERS, K = CASES)
  rows <- lapply(seq_len(nrow(grid)), function(i) {
    r <- SsPowerGivenJK(ds, FOM = "Wilcoxon", J = grid$J[i], K = grid$K[i])
    data.frame(readers = grid$J[i], cases = grid$K[i], power = r$powerRRRC,
               df2 = r$df2RRRC, ncp = r$ncpRRRC)
  })
  sizes <- lapply(SIZE_READERS, function(J) {
    r <- SsSampleSizeKGivenJ(ds, FOM = "Wilcoxon", J = J, desiredPower = 0.8)
    data.frame(readers = J, target = 0.8, cases = r$KRRRC, power = r$powerRRRC)
  })
  message(sprintf("  %s %s two modalities: power(J=5,K=100) %.4f", basename(csv), endpoint,
                  rows[[which(grid$J == 5 & grid$K == 100)]]$power))
  list(
    set = sub("\\.csv$", "", basename(csv)),
    endpoint = endpoint,
    modalities = modalities,
    # RJafroc's modality means (its trtMeanDiffs is the first minus the second).
    means = as.list(setNames(rowMeans(foms), modalities)),
    components = list(VarTR = vc["VarTR", "Estimates"], Cov1 = vc["Cov1", "Estimates"],
                      Cov2 = vc["Cov2", "Estimates"], Cov3 = vc["Cov3", "Estimates"],
                      Var = vc["Var", "Estimates"],
                      KStar = length(ds$ratings$NL[1, 1, , 1])),
    power = do.call(rbind, rows),
    sample_size = do.call(rbind, sizes)
  )
}

sets <- c("per_case_randomised", "initial_revised", "per_case_subsets")
csvs <- file.path(mrmc_dir, paste0(sets, ".csv"))
shared_sets <- c("thesis_study", "crossed_three_arms", "random_subsets_crossover")
if (dir.exists(shared_dir)) {
  sets <- c(sets, shared_sets)
  csvs <- c(csvs, file.path(shared_dir, paste0(shared_sets, ".csv")))
} else {
  message("shared reference folder ", shared_dir, " absent: skipping its sets")
}

out <- list(
  tool = sprintf("RJafroc %s SsPowerGivenJK / SsSampleSizeKGivenJ, method OR, RRRC",
                 versions$RJafroc),
  versions = versions,
  alpha = 0.05,
  components = list(),
  datasets = list()
)
for (i in seq_along(sets)) {
  out$components[[sets[i]]] <- run_set(csvs[i], file.path(mrmc_dir,
                                                          paste0(sets[i], ".mrmcaov.json")))
}
if (dir.exists(shared_dir)) {
  crossed <- file.path(shared_dir, "crossed_three_arms.csv")
  out$datasets <- list(
    run_dataset(crossed, c("se_cbir", "unaided"), "melanoma_auc", "mel"),
    run_dataset(crossed, c("se_cbir", "unaided"), "malignant_auc", MALIGNANT)
  )
}
target <- file.path(script_dir, "rjafroc_power.json")
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = NA,
                  na = "null", dataframe = "rows"), target)
message("wrote ", target)
