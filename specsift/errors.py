"""One exception type for bad input, so users see the file, the row and the problem."""

from __future__ import annotations

from os import PathLike

__all__ = ["SpecsiftInputError"]


class SpecsiftInputError(ValueError):
    """Bad input data: names the file, the row (or object id) and what is wrong with it.

    Arguments:
        problem: what is wrong, in words a survey scientist understands.
        path: the file (or folder) the problem was found in.
        row: the 0-based row of the object in that file, if the problem is per object.
        object_id: the survey id of that object (TARGETID, APOGEE_ID, ...), if known.
    """

    def __init__(self, problem: str, path: str | PathLike | None = None,
                 row: int | None = None, object_id=None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.row = row
        self.object_id = object_id
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        if object_id is not None:
            where.append(f"id {object_id}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)
