#!/usr/bin/env bash
# Train on an accelerator machine for a fixed number of minutes and leave the model in $OUT.
#
#   scripts/accelerator_train.sh DATASET MINUTES [extra `retrograde train` options...]
#
# Run from the repository root on the accelerator machine (the device tool runs commands there), with
# the dataset built beforehand on the CPU (`retrograde dataset build`, zstd shards: 100M tokens are about
# 15 MiB) and the wheels the machine's python lacks carried along (see docs/dataset.md):
#
#   carry: runs/dataset runs/wheels
#   command: scripts/accelerator_train.sh runs/dataset 9
#
# Environment: PYTHON (default python3), WHEELS (default runs/wheels), OUT (where the model goes; the device
# tool sets it), BATCH (default 64), RESUME_FROM (a model directory with checkpoint/ to continue from),
# KEEP_CHECKPOINT=1 to bring the optimizer state back too (to resume later on a CPU or another machine).
# Weights come back as safetensors shards of at most 16 MB; loss.csv, loss.png and training_info.json
# lie beside them.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 DATASET MINUTES [retrograde train options...]" >&2
    exit 2
fi
DATASET=$1
MINUTES=$2
shift 2
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-runs/wheels}
OUT=${OUT:-runs/accelerator-out}
BATCH=${BATCH:-64}

if [ ! -f "$DATASET/manifest.json" ]; then
    echo "retrograde: $DATASET is not a dataset (no manifest.json): build it on the CPU and carry it" >&2
    exit 2
fi
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    # Only the carried files: the machine has no network.
    "$PYTHON" -m pip install --quiet --no-index --no-deps "$WHEELS"/*.whl
fi
if ! "$PYTHON" -c "import torch, transformers, tokenizers, safetensors" 2> /dev/null; then
    echo "retrograde: $PYTHON lacks torch, transformers, tokenizers or safetensors; carry their wheels in $WHEELS" >&2
    exit 1
fi
"$PYTHON" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}",
      f"({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
EOF

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
MODEL="$OUT/model"
mkdir -p "$MODEL"
RESUME=()
if [ -n "${RESUME_FROM:-}" ]; then
    cp -r "$RESUME_FROM"/. "$MODEL"/
    RESUME=(--resume)
fi
# --max-minutes counts optimization only (and is summed over resumed runs); the model is saved at the end.
"$PYTHON" -m retrograde train --dataset "$DATASET" --out "$MODEL" --device cuda \
    --batch-size "$BATCH" --block-size 512 --max-minutes "$MINUTES" --steps 1000000 \
    --eval-every 200 --save-every 1000 --threads "$(nproc)" "${RESUME[@]}" "$@"
if [ "${KEEP_CHECKPOINT:-0}" != 1 ]; then
    rm -rf "$MODEL/checkpoint"
fi
ls -l "$MODEL"
