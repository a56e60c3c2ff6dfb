"""Curricula: which task each env copy plays next (``teachers.py``; tasks: ``envs/tasks.py``)."""

from mentor.curricula.teachers import Teacher, make_teacher

__all__ = ["Teacher", "make_teacher"]
