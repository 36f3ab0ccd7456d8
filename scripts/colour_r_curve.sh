#!/usr/bin/env bash
# colour_r against the number of training galaxies (docs/model-history.md): nested subsets of sdss-more,
# trained from scratch for the same number of steps (~2,450 of 16 images), each scored by its
# last checkpoint on the same full held-out SDSS images (sdss-gz2 val and sdss-more val).
# Usage: bash scripts/colour_r_curve.sh OUT_DIR   (about 30 min per point on a 2-core CPU)
set -euo pipefail
out=${1:?usage: colour_r_curve.sh OUT_DIR}
data=${DATA:-../shared/data}
# --max-images N keeps the first N by a fixed hash, so each subset holds the smaller ones;
# epochs make the steps equal: 671, 2,041 and 5,657 training images give 41, 127 and 353 steps an epoch.
for point in 800:60 2400:19 6670:7; do
  n=${point%%:*} epochs=${point##*:}
  if [ ! -f "$out/n$n/last.safetensors" ]; then
    galcolor train "$data/sdss-more" --max-images "$n" --epochs "$epochs" --global-pathway --augment none \
      --threads 2 -q --out "$out/n$n"
  fi
  python scripts/survey_table.py "$out/n$n/last.safetensors" "$data/sdss-gz2=-" "$data/sdss-more=-" --json "$out/n$n/scores.json"
done
