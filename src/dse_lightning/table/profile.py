"""A profile (experiments/paper_table/profiles/<name>.yaml), the cells it expands to, and the Hydra
multiruns that run them: the cells of one seed and student spec differ only in their task, so they are
one `python -m dse_lightning.train -m task=a,b,c ...` sweep whose jobs land in `<out>/cells/<task>/<cell>/`.
A multi-task spec (`tasks=glue_pairs` among its overrides) is one run per seed for all the profile's tasks,
`<out>/cells/multitask/<cell>/`, whose per-task records become the cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

PROFILES = Path("experiments/paper_table/profiles")  # the default, relative to the project root
REQUIRED = ("name", "tasks", "seeds", "common", "students")


@dataclass(frozen=True)
class Cell:
    """One engine run: a teacher (stage=teacher) or a student (stage=all: fits its teacher if not cached)."""

    task: str
    seed: int
    overrides: tuple[str, ...]  # everything but task=
    student: str | None = None
    alpha: float | None = None
    augment: str = "none"  # the transfer set (conf/augment/); none: gold pairs only
    variant: str | None = None  # the spec's own name, for variants the other fields do not tell apart

    @property
    def name(self) -> str:
        if self.student is None:
            return f"teacher_s{self.seed}"
        if self.variant:
            return f"{self.variant}_s{self.seed}"
        augment = "" if self.augment == "none" else f"_{self.augment}"
        return f"{self.student}{augment}_a{self.alpha:g}_s{self.seed}"

    def dir(self, out: Path) -> Path:
        return out / "cells" / self.task / self.name


@dataclass(frozen=True)
class Sweep:
    """Cells that differ only in their task: one Hydra multirun over `task=`."""

    name: str
    cells: tuple[Cell, ...]

    @property
    def id(self) -> str:
        """Unique among a profile's sweeps (its lock and log): teachers share a name, one sweep per task."""
        teacher = self.cells[0].student is None
        return f"{self.cells[0].task}_{self.name}" if teacher else self.name

    @property
    def multitask(self) -> bool:
        """A spec with `tasks=` in its overrides: one student for all the cells' tasks, one run."""
        return any(o.startswith("tasks=") for o in self.cells[0].overrides)

    def run_dir(self, out: Path) -> Path:
        """A multi-task sweep's run (its per-task records are copied into the cells)."""
        return out / "cells" / "multitask" / self.name

    def overrides(self, out: Path) -> list[str]:
        if self.multitask:
            names = ",".join(c.task for c in self.cells)
            return [*self.cells[0].overrides, f"tasks.names=[{names}]", f"hydra.run.dir={self.run_dir(out)}"]
        tasks = ",".join(c.task for c in self.cells)
        where = [f"hydra.sweep.dir={out / 'cells'}", f"hydra.sweep.subdir=${{task.name}}/{self.name}"]
        return ["-m", *self.cells[0].overrides, f"task={tasks}", *where]


@dataclass
class Profile:
    name: str
    tasks: list[str]
    seeds: list[int]
    common: list[str]
    students: list[dict]
    teacher_seed: int | None = None
    transfer: dict | None = None
    keep_checkpoints: bool = True
    workers: int = 1  # cell runners in parallel, each with cores / workers threads
    baseline: str | None = None  # another profile (its table in <profiles>/../<name>) compared cell by cell

    def _base(self, seed: int) -> list[str]:
        shared = [f"teacher.seed={self.teacher_seed}"] if self.teacher_seed is not None else []
        return [*self.common, f"seed={seed}", *shared]

    def teacher_cells(self) -> list[Cell]:
        seeds = [self.teacher_seed] if self.teacher_seed is not None else self.seeds
        return [Cell(task, s, (*self._base(s), "stage=teacher")) for s in seeds for task in self.tasks]

    def student_cells(self) -> list[Cell]:
        """Seed by seed, so a partial run already has every model of the first seed."""
        cells = []
        for seed in self.seeds:
            for spec in self.students:
                extra = [  # augment always named: a student's config may recommend one
                    f"student={spec['student']}",
                    f"distill.alpha={spec['alpha']}",
                    f"augment={spec['augment']}",
                    *spec["overrides"],
                ]
                overrides = (*self._base(seed), "stage=all", *extra)
                variant = (spec["student"], float(spec["alpha"]), spec["augment"], spec.get("name"))
                cells += [Cell(task, seed, overrides, *variant) for task in self.tasks]
        return cells

    def cells(self) -> list[Cell]:
        return self.teacher_cells() + self.student_cells()


def sweeps(cells: list[Cell]) -> list[Sweep]:
    """The cells grouped into multiruns over their tasks, in the cells' order. Teachers are one sweep per
    task, so that parallel runners fit them side by side (every student cell of a task waits for its
    teacher; one multirun of all the teachers kept the other runners waiting)."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        own = cell.task if cell.student is None else None
        groups.setdefault((cell.name, cell.overrides, own), []).append(cell)
    return [Sweep(name, tuple(group)) for (name, _, _), group in groups.items()]


def load_profile(name_or_path: str, profiles: Path = PROFILES) -> Profile:
    """A profile by name (`profiles/<name>.yaml`) or path; a clear error for unknown names or keys."""
    path = _profile_path(name_or_path, profiles)
    raw = _merged(path, [])
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    unknown = sorted(set(raw) - set(Profile.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(Profile.__dataclass_fields__)}")
    names = [s["name"] for s in raw["students"] if s.get("name")]  # what a `versus` may name
    for i, spec in enumerate(raw["students"]):
        if not {"student", "alpha"} <= set(spec) or set(spec) - {
            "student",
            "alpha",
            "augment",
            "name",
            "overrides",
            "versus",
        }:
            raise ValueError(
                f"{path}: students[{i}] needs 'student' and 'alpha' (and may have 'augment', 'name', "
                f"'overrides', 'versus'), got {sorted(spec)}"
            )
        if "versus" in spec and (not spec.get("name") or spec["versus"] not in names):
            raise ValueError(
                f"{path}: students[{i}].versus={spec['versus']!r}: a named spec compared with another "
                f"spec's name, one of {names}"
            )
        spec.setdefault("overrides", [])
        spec.setdefault("augment", "none")
    return Profile(**raw)


def _profile_path(name_or_path: str, profiles: Path) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = profiles / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in profiles.glob("*.yaml"))
        raise FileNotFoundError(f"PROFILE={name_or_path}: no profile {path}; known profiles: {known}")
    return path


def _merged(path: Path, chain: list[Path]) -> dict:
    """The profile's keys over those of the profile it `extends` (a name beside it), whose `common` its
    `add_common` extends: a variant of a profile says only what it changes."""
    if path.resolve() in chain:
        raise ValueError(f"{path}: extends itself through {[p.name for p in chain]}")
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    parent, added = raw.pop("extends", None), raw.pop("add_common", None)
    if parent is not None and "name" not in raw:  # the parent's name would be the parent's table
        raise ValueError(f"{path}: a profile that extends {parent!r} needs a name of its own")
    if parent is None:
        if added is not None:
            raise ValueError(f"{path}: add_common extends a parent's common: it needs `extends`")
        return raw
    merged = {**_merged(_profile_path(str(parent), path.parent), [*chain, path.resolve()]), **raw}
    merged["common"] = [*merged.get("common", []), *(added or [])]
    return merged
