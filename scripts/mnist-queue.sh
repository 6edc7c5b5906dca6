#!/usr/bin/env bash
# The MNIST study runs still to finish, in order; each step resumes what is done, so rerun it after any stop.
# Run from a frozen checkout (merges on main never change the code mid-run), rows into the main checkout:
#   git worktree add --detach ../run-q HEAD && cd ../run-q
#   nohup scripts/mnist-queue.sh /path/to/main/checkout --data-root ../shared/data > queue.log 2>&1 &
# Steps: the ablation; the resize check (the techniques whose published MAE lies outside our interval first); the
# study protocol's expensive techniques; the rest of the first rerun's recipe one setting at a time (the study's arm
# shared from report/results/mnist, never trained twice).
set -u
cd "$(dirname "$0")/.."
while pgrep -f "python -m aebench run" > /dev/null; do sleep 30; done  # one run at a time: cells use every core
R="$1/report/results"
shift
run() { nice -n 5 python -m aebench run "$@"; }
run experiments/mnist-ablation.yaml --out "$R/mnist-ablation" "$@"
run experiments/mnist-resize.yaml --out "$R/mnist-resize" --set 'techniques=[baseline, progressive_resizing, pixel_shuffle]' "$@"
run experiments/mnist.yaml --out "$R/mnist" "$@" \
  --set 'techniques=[baseline, pca, pixel_shuffle, progressive_resizing, feature_loss, resnet_scratch, resnet_pretrained]'
for arm in 'clamp:train.clamp: [false, true]' 'layers:model.layers: [aebench, study]' \
  'betas:train.betas: [[0.9, 0.999], [0.9, 0.99]]' 'decay:train.weight_decay: [0.0, 1.0e-2]'; do
  sets=(--set "name=mnist-recipe-${arm%%:*}" --set "sweep={${arm#*:}}")
  mkdir -p "$R/mnist-recipe-${arm%%:*}"
  PYTHONPATH=. python scripts/share_cells.py "$R/mnist" experiments/mnist-recipe.yaml "$R/mnist-recipe-${arm%%:*}" "${sets[@]}"
  run experiments/mnist-recipe.yaml --out "$R/mnist-recipe-${arm%%:*}" "${sets[@]}" "$@"
done
