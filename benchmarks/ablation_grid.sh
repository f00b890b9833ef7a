#!/usr/bin/env bash
# The ablation grid of issue 13 (docs/ABLATION_PROTOCOL.md): 5 variants x student seeds 1..5, queued
# as DVC experiments and run by two background workers. Read it with
#   python -m pipeline.tools.report --profile default   # -> reports/grid.md, reports/claims.md
# Usage: bash benchmarks/ablation_grid.sh [seeds...]   (default: 1 2 3 4 5); JOBS=N for N workers;
# EXTRA="-S key=value ..." is added to every experiment, e.g. EXTRA="-S lift.method=viterbi" for the
# corpus of the first grid (docs/ABLATION_PROTOCOL.md, "Change after the grid").
set -euo pipefail
seeds=("${@:-1 2 3 4 5}")
read -r -a seeds <<<"${seeds[*]}"
variants=(
  ""                                                    # full
  "-S loss.distil=0"                                    # w/o KD
  "-S student.text_encoder=transformer"                 # w/o BERT (BERT's depth and width, from scratch)
  "-S student.text_encoder=transformer -S loss.distil=0" # w/o BERT, w/o KD
  "-S vae.loss=mse"                                     # MSE-VAE
)
for seed in "${seeds[@]}"; do
  for v in "${variants[@]}"; do
    # shellcheck disable=SC2086  # $v and $EXTRA hold several -S arguments
    dvc exp run --queue -S "student.seed=${seed}" $v ${EXTRA:-}
  done
done
dvc queue start -j "${JOBS:-2}"
echo "queued ${#seeds[@]} x ${#variants[@]} experiments; follow with: dvc queue status"
