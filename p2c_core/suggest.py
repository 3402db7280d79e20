""" "Did you mean": the closest real name, for error messages that name a misspelling."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate equal but for case, else the closest by spelling, else None."""
    pool = list(candidates)
    exact = {c.lower(): c for c in pool}.get(name.lower())
    if exact:
        return exact
    found = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` or, with nothing close, `; known: a, b, c`."""
    known = sorted(candidates)
    hint = nearest(name, known)
    return f"; did you mean {hint!r}?" if hint else f"; known: {', '.join(known)}"
