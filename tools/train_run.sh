#!/usr/bin/env bash
# One unattended training run, for a machine lent for minutes (a GPU):
#   tools/train_run.sh EVENTS_ARCHIVE OUT_DIR MINUTES [key=value ...]
# EVENTS_ARCHIVE: a .tar.gz of prepare_data's output folder (python -m tools.prepare_data --out data/events;
# tar czf events.tgz -C data events). Trains configs/main.toml for MINUTES of wall time (the LR decays by
# then), then writes the weights (final.pt: the last step; best.pt: lowest validation NLL with chords hidden) and the loss
# plot into OUT_DIR. Works the same on a CPU (slowly).
set -euo pipefail
archive=$1 out=$2 minutes=$3
shift 3
work=$(mktemp -d)
tar xzf "$archive" -C "$work"
mkdir -p "$out"
python3 -m tools.train --config configs/main.toml data="$work/events" out_dir="$work/run" \
  max_minutes="$minutes" "$@" 2>&1 | tee "$out/train.log" | grep -v '^\s*$' | grep -E 'val|done|model|time limit|Error|error' || true
# the weights without the optimizer state (a third the size: small enough to bring back)
python3 - "$work/run" "$out" <<'PY'
import sys, torch
src, dst = sys.argv[1:]
for name in ("ckpt.pt", "best.pt"):
    state = torch.load(f"{src}/{name}", map_location="cpu", weights_only=False)
    state.pop("optimizer", None)
    torch.save(state, f"{dst}/{'final' if name == 'ckpt.pt' else 'best'}.pt")
PY
cp "$work/run/loss.png" "$out/" 2>/dev/null || true
ls -la "$out"
