#!/bin/bash
# Issue 3 dse experiments on one GPU. Model: embedded MiniLM saved as fp16 (to fit the 64 MiB carry), loaded as fp32.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -c "import pyarrow, datasets, hydra, torch, transformers, pytorch_lightning as pl; print('versions', pyarrow.__version__, datasets.__version__, torch.__version__, transformers.__version__, pl.__version__, torch.cuda.get_device_name())" || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
COMMON="trainer=gpu teacher.backbone=$PWD/.gpu/minilm data.dir=$PWD/.gpu/glue paths.cache_dir=/tmp/dsecache logger=none trainer.enable_progress_bar=false student=dse"
gather() { python3 .gpu/gather.py /tmp/sweeps > $OUT/results.jsonl; wc -l $OUT/results.jsonl; }
sweep() { name=$1; shift; s=$(date +%s); python3 -m dse_lightning.train -m $COMMON hydra.sweep.dir=/tmp/sweeps/$name "$@" >> $OUT/log.txt 2>&1; echo "$name rc=$? $(( $(date +%s) - s )) s"; gather; }
sweep stsb task=stsb distill.alpha=0,0.5
sweep rte task=rte distill.alpha=0,0.5
sweep mrpc_a0 task=mrpc distill.alpha=0 seed=42,43,44
sweep mrpc_a05 task=mrpc distill.alpha=0.5 distill.kind=mse,kl distill.temperature=2 seed=42,43,44
sweep rte_kl task=rte distill.alpha=0.5 distill.kind=kl distill.temperature=2
