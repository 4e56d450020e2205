"""Add serving backends' files to a student export or a teacher's CrossEncoder export: the ONNX fp32 and
int8 graphs, and (given calibration inputs) the OpenVINO fp32 and static int8 ones; every backend of the
registry (backends/) with files.

    python -m dse_lightning.export.onnx EXPORT [--openvino TASK]

The files go into a new version of the export (written atomically, covered by its manifest); the meta
records each backend's file under `onnx` and the calibration sample. `load_student(path, backend=...)`
then encodes with them.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from ..store import publish, read_manifest
from ..utils.io import sentences_checksum, sha256_file
from .backends import BACKENDS, GRAPHS, Writing, get_backend, verify_served
from .calibration import CALIBRATION_SIZE, calibration_inputs, calibration_source
from .cross_encoder import KIND as CROSS_ENCODER
from .cross_encoder import REMEDY as CROSS_ENCODER_REMEDY
from .cross_encoder import PairWriting, is_cross_encoder
from .student_io import KIND, verify_export

log = logging.getLogger(__name__)
FILES = {name: b.file for name, b in BACKENDS.items() if b.file}  # the built-in backends' files


def _verified(path: Path) -> tuple[str, type[Writing], dict]:
    """The export's kind, how its graphs are written, and its spec (its files verified)."""
    if is_cross_encoder(path):
        return CROSS_ENCODER, PairWriting, verify_served(path, CROSS_ENCODER, CROSS_ENCODER_REMEDY)
    spec = verify_export(path)
    if not spec["encoder"]["_target_"].endswith("TransformerEncoder"):
        raise ValueError(f"{path}: ONNX export is for transformer students; this one is {spec['encoder']}")
    return KIND, Writing, spec


def graphs_writer(
    path: str | Path,
    calibration: list | None = None,
    calibration_source: str = "",
    backends: Iterable[str] | None = None,
) -> tuple[str, Callable[[Path], dict]]:
    """The export's kind and `write(tmp) -> meta`, which puts the export at `path` with `backends`' files
    into `tmp` (see `add_onnx`): for `publish` onto the export itself, or into a store's own artifact."""
    path = Path(path)
    kind, writing_type, spec = _verified(path)
    chosen = [get_backend(n) for n in backends] if backends is not None else list(BACKENDS.values())
    written = [b for b in chosen if b.file and (calibration or not b.with_calibration)]

    def write(tmp: Path) -> dict:
        log.info("writing %s of %s", [b.name for b in written], path)
        shutil.copytree(path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("manifest.json"))
        writing = writing_type(path, tmp, spec, calibration)
        for backend in written:
            backend.write(writing)
        kept = {
            n: f
            for n, f in spec.get(GRAPHS, {}).items()
            if n in {b.name for b in written} or _intact(path, tmp, n, kind)
        }
        graphs = kept | {b.name: b.file for b in written}
        if not calibration:
            return {**spec, GRAPHS: graphs}
        sample = {"source": calibration_source, "sentences": len(calibration)}
        return {**spec, GRAPHS: graphs, "calibration": sample | {"sha256": calibration_checksum(calibration)}}

    return kind, write


def add_onnx(
    path: str | Path,
    calibration: list | None = None,
    calibration_source: str = "",
    backends: Iterable[str] | None = None,
) -> dict:
    """Write `backends` (default: every registered backend with files; those written with calibration
    only when `calibration` inputs are given, `calibration_source` saying where they came from) into a
    transformer student's export (calibration: sentences) or a CrossEncoder export (sentence pairs), as a
    new version of the artifact; the export's spec afterwards. Backends added before and not written
    again stay."""
    kind, write = graphs_writer(path, calibration, calibration_source, backends)
    return publish(path, kind, write, writer=True).meta


def calibration_checksum(calibration: list) -> str:
    """sha256 of the calibration sentences, one per line (pairs: the two sides joined by a tab)."""
    return sentences_checksum(x if isinstance(x, str) else "\t".join(x) for x in calibration)


def _intact(path: Path, tmp: Path, name: str, kind: str) -> bool:
    """Whether backend `name`'s graph files, kept from the export at `path`, match its manifest; a bad one
    is left out of the new version (with its files) rather than hashed into it as if it were good."""
    backend, files = get_backend(name), read_manifest(path, kind)["files"]
    bad = [rel for rel, digest in files.items() if backend.owns(rel) and sha256_file(path / rel) != digest]
    for rel in bad:
        (tmp / rel).unlink(missing_ok=True)
    if bad:
        how = " --openvino TASK" if backend.with_calibration else ""
        again = f"python -m dse_lightning.export.onnx {path}{how}"
        log.warning(
            "%s: %s does not match its manifest; %s left out (`%s` writes it again)",
            path,
            bad[0],
            name,
            again,
        )
    return not bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Add fp32 and int8 ONNX (and OpenVINO) graphs to a transformer student's export or a "
        "teacher's CrossEncoder export"
    )
    p.add_argument(
        "export",
        type=Path,
        help="a student export folder (<run>/student/export) or a CrossEncoder export "
        "(<run>/teacher/cross_encoder)",
    )
    p.add_argument(
        "--openvino",
        metavar="TASK",
        help="also the OpenVINO fp32 and static int8 graphs, calibrated on TASK's train sentences (a "
        "CrossEncoder: its train pairs; task/TASK.yaml: the package's or $DSE_CONFIG_DIR's)",
    )
    p.add_argument("--calibration-size", type=int, default=CALIBRATION_SIZE, help="inputs sampled (seed 0)")
    p.add_argument("--data-dir", default=None, help="a glue_data folder (default: as data.dir resolves)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sentences, source = None, ""
    if args.openvino:
        pairs = is_cross_encoder(args.export)
        sentences = calibration_inputs(args.openvino, args.data_dir, args.calibration_size, pairs=pairs)
        source = calibration_source(args.openvino, pairs=pairs)
    print(add_onnx(args.export, sentences, source)[GRAPHS])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
