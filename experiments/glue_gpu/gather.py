import json, sys
from pathlib import Path
for p in sorted(Path(sys.argv[1]).rglob("results.json")):
    r = json.loads(p.read_text())
    d, t, s = r["config"]["distill"], r["teacher"], r.get("student", {})
    print(json.dumps({"job": str(p.parent), "task": r["task"], "seed": r["seed"], "alpha": d["alpha"], "kind": d["kind"],
                      "T": d["temperature"], "teacher": t["metrics"], "teacher_time_s": t.get("train_time_s"),
                      "teacher_reused": t.get("reused"), "student": s.get("metrics"),
                      "rel_deg": s.get("relative_degradation"), "student_time_s": s.get("train_time_s")}))
