"""The steps each task gets in one epoch under each sampling rule, per seed (the README's ablation):
`.venv/bin/python experiments/multitask/schedules.py > experiments/multitask/schedules.json`. Batches per
task are its gold + transfer pairs (results.md) over student.batch_size 32; the schedule is the run's own
(`dse_lightning.data.multitask.schedule`, drawn from the seed, as the multi-task DataModule draws epoch 0)."""

import collections
import json
import math

from dse_lightning.data.multitask import schedule

ROWS = {"mrpc": 3668 + 7236, "stsb": 5749 + 10683, "rte": 2490 + 4560}
SIZES = {task: math.ceil(n / 32) for task, n in ROWS.items()}
steps = {
    rule: {seed: collections.Counter(schedule(SIZES, rule, seed, 2.0)) for seed in (42, 43, 44)}
    for rule in ("proportional", "temperature")
}
print(json.dumps({"batches": SIZES, "steps": steps}, indent=1, sort_keys=True))
