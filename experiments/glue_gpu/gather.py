# One JSON line per run under a sweep folder, read through the engine's typed results (run.sh calls it).
import json
import sys
from pathlib import Path

from dse_lightning.results import RunResult

for p in sorted(Path(sys.argv[1]).rglob("results.json")):
    r = RunResult.read(p)
    t, s = r.teacher, r.student
    print(json.dumps({"job": str(p.parent), "task": r.task, "seed": r.seed, "alpha": s and s.alpha,
                      "loss": s and s.loss, "teacher": t.metrics, "teacher_time_s": t.train_time_s,
                      "teacher_reused": t.reused, "student": s and s.metrics,
                      "rel_deg": s and s.relative_degradation, "student_time_s": s and s.train_time_s}))
