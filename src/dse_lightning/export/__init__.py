"""Trained students, loadable without the training code: `load_student(path).score(a, b)`."""

from .student_io import ExportedStudent, export_student, load_student, verify_export

__all__ = ["ExportedStudent", "export_student", "load_student", "verify_export"]
