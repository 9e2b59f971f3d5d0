"""Disclosure control of every government answer and export (docs/reporting.md).

A table is a set of cells, each with its contributors (distinct residents, or enterprises) and
for magnitude tables its two largest contributions, and the *lines* that publish a total: a
line says ``total = sum(parts)``. The rules:

- **Primary** (frequency): a cell with ``0 < contributors < k`` is sensitive; (dominance, on
  magnitude tables) a cell whose ``n`` largest contributions make ``>= k_dominance`` of its
  value is sensitive. An empty cell (no contributor) is a published zero: it reveals no one.
- **Secondary** (complementary): no line may hold exactly one suppressed cell, and no
  suppressed cell may be determined by the published figures at all: the linear system of every
  line, with the suppressed cells as unknowns, is row-reduced exactly (fractions, or modulo
  two large primes for a large independent part) and a cell is determined when its variable
  is a pivot with no free variable in its row. While one is, its
  line's smallest other publishable cell is suppressed too (parts before the total, non-zero
  before zero), and the check runs again.

A suppressed cell is published as ``value: null, status: "suppressed"``, never as 0.

Tables linked across grains (a month is the sum of its days) are protected together by
``reporting.rollups.protect_linked`` with the same machinery. Not protected (documented):
bounds from non-negativity (a suppressed cell is at most its line's total minus the
published parts).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from msgspec import Struct

Status = Literal["ok", "suppressed"]


class Stat(Struct, frozen=True, kw_only=True):
    """What the rules read of one cell."""

    contributors: int
    value: float = 0.0  # the magnitude the dominance rule weighs (and the tie-break)
    top: tuple[float, ...] = ()  # the largest contributions, largest first (magnitude tables)


class Line(Struct, frozen=True):
    """A published total and the cells it adds up."""

    total: Hashable
    parts: tuple[Hashable, ...]


class Rule(Struct, frozen=True, kw_only=True):
    k: int  # frequency: fewer contributors than this is sensitive
    dominance_n: int | None = None  # dominance (n, k): None for count tables
    dominance_k: float = 0.85


class Cell(Struct, frozen=True, kw_only=True):
    """A published figure: its value, or null when suppressed."""

    value: int | float | None
    status: Status = "ok"


SUPPRESSED = Cell(value=None, status="suppressed")


def primary(stat: Stat, rule: Rule) -> bool:
    """The cell itself is sensitive."""
    if stat.contributors <= 0:
        return False
    if stat.contributors < rule.k:
        return True
    if rule.dominance_n is not None and stat.value > 0:
        largest = sum(sorted(stat.top, reverse=True)[: rule.dominance_n])
        if largest >= rule.dominance_k * stat.value:
            return True
    return False


_PRIMES = (2_147_483_629, 2_147_483_587)  # below 2**31: products fit in int64
_EXACT_MAX = 80  # unknowns reduced with fractions; larger parts modulo two primes


def _pivots_mod(matrix: np.ndarray, prime: int) -> set[int]:
    """The determined columns of ``matrix`` over GF(prime) (reduced row echelon form)."""
    m = matrix % prime
    rows, n = m.shape
    pivots: list[int] = []
    r = 0
    for c in range(n):
        if r == rows:
            break
        nz = np.nonzero(m[r:, c])[0]
        if nz.size == 0:
            continue
        i = r + int(nz[0])
        m[[r, i]] = m[[i, r]]
        m[r] = (m[r] * pow(int(m[r, c]), prime - 2, prime)) % prime
        col = m[:, c].copy()
        col[r] = 0
        hit = np.nonzero(col)[0]
        if hit.size:
            m[hit] = (m[hit] - (col[hit, None] * m[r][None, :]) % prime) % prime
        pivots.append(c)
        r += 1
    free = np.ones(n, dtype=bool)
    free[pivots] = False
    return {c for i, c in enumerate(pivots) if not m[i, free].any()}


def _reduced(
    unknowns: Sequence[Hashable], equations: Sequence[dict[Hashable, int]]
) -> list[Hashable]:
    """The unknowns that the homogeneous system ``equations`` fixes. Small parts: rational
    arithmetic. Large parts: modulo two large primes (numpy); when the two disagree (a rank
    can fall modulo a prime) the part is reduced with fractions after all."""
    if len(unknowns) > _EXACT_MAX:
        index = {u: i for i, u in enumerate(unknowns)}
        matrix = np.zeros((len(equations), len(unknowns)), dtype=np.int64)
        for row, eq in enumerate(equations):
            for u, v in eq.items():
                matrix[row, index[u]] += v
        first, second = (_pivots_mod(matrix, p) for p in _PRIMES)
        if first == second:
            return [unknowns[c] for c in sorted(first)]
    return _reduced_exact(unknowns, equations)


def _reduced_exact(
    unknowns: Sequence[Hashable], equations: Sequence[dict[Hashable, int]]
) -> list[Hashable]:
    """Exact: the unknowns that the homogeneous system ``equations`` (coefficients by unknown)
    fixes, i.e. the pivots of its reduced row echelon form with no free variable in their row
    (rational arithmetic, no rounding)."""
    index = {u: i for i, u in enumerate(unknowns)}
    n = len(unknowns)
    rows: list[list[Fraction]] = []
    for eq in equations:
        coeffs = [Fraction(0)] * n
        for u, v in eq.items():
            coeffs[index[u]] += v
        rows.append(coeffs)
    pivots: list[int] = []
    r = 0
    for c in range(n):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][c]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
        if r == len(rows):
            break
    pivot_set = set(pivots)
    return [
        unknowns[c]
        for i, c in enumerate(pivots)
        if all(rows[i][j] == 0 for j in range(n) if j not in pivot_set)
    ]


def _determined(lines: Sequence[Line], suppressed: set[Hashable]) -> list[Hashable]:
    """The suppressed cells whose value the published figures determine exactly. The system
    falls apart into independent parts (unknowns that share no line share no equation): each
    is reduced on its own, so the cost follows the largest connected group of suppressed
    cells, not the table."""
    equations: list[dict[Hashable, int]] = []
    for line in lines:
        eq: dict[Hashable, int] = {}
        for part in line.parts:
            if part in suppressed:
                eq[part] = eq.get(part, 0) + 1
        if line.total in suppressed:
            eq[line.total] = eq.get(line.total, 0) - 1
        eq = {k: v for k, v in eq.items() if v}
        if eq:
            equations.append(eq)
    parent: dict[Hashable, Hashable] = {}

    def find(x: Hashable) -> Hashable:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:
            parent[x], x = root, parent.get(x, x)
        return root

    for eq in equations:
        first, *rest = eq
        for other in rest:
            ra, rb = find(first), find(other)
            if ra != rb:
                parent[rb] = ra
    parts: dict[Hashable, list[dict[Hashable, int]]] = {}
    for eq in equations:
        parts.setdefault(find(next(iter(eq))), []).append(eq)
    out: list[Hashable] = []
    for eqs in parts.values():
        unknowns = sorted({u for eq in eqs for u in eq}, key=repr)
        out += _reduced(unknowns, eqs)
    return out


def determined_cells(lines: Sequence[Line], suppressed: Iterable[Hashable]) -> list[Hashable]:
    """The suppressed cells that the published cells and lines determine exactly (what an
    attacker solving the tables' equations recovers). Empty for a protected table."""
    return _determined(lines, set(suppressed))


def protect(
    stats: Mapping[Any, Stat],
    lines: Sequence[Line],
    rule: Rule,
    *,
    pre: Iterable[Hashable] = (),
    exact: Sequence[Sequence[Line]] | None = None,
    pre_checked: bool = False,
) -> set[Hashable]:
    """The cells to suppress: the sensitive ones and their complements. Cells named in lines
    but absent from ``stats`` are empty (published zeros). ``exact``: the groups of lines the
    exact check solves together (default: all of them as one system); the one-suppression
    rule always holds on every line. ``pre_checked``: ``pre`` already passed the exact check
    (stored tables), so a group is solved again only once it gains a suppression."""
    empty = Stat(contributors=0)

    def stat(key: Hashable) -> Stat:
        return stats.get(key, empty)

    pre = set(pre)
    suppressed = {key for key, s in stats.items() if primary(s, rule)} | pre
    if not suppressed:
        return suppressed
    groups = list(exact or [lines])
    members_of = [{m for ln in g for m in (ln.total, *ln.parts)} for g in groups]
    # What each group's last exact check saw (a group is solved again only when it changed).
    seen: list[frozenset[Hashable] | None] = [
        frozenset(pre & members) if pre_checked else None for members in members_of
    ]
    by_cell: dict[Hashable, list[Line]] = {}
    for line in lines:
        for key in (line.total, *line.parts):
            by_cell.setdefault(key, []).append(line)

    def complement(line: Line) -> Hashable | None:
        """The line's cheapest publishable cell: a non-empty part of the smallest value, then
        the total, then an empty part."""
        parts = [p for p in line.parts if p not in suppressed]
        filled = [p for p in parts if stat(p).contributors > 0]
        if filled:
            return min(filled, key=lambda p: (abs(stat(p).value), stat(p).contributors, repr(p)))
        if line.total not in suppressed:
            return line.total
        return min(parts, key=repr) if parts else None

    while True:
        changed = True
        while changed:
            changed = False
            for line in lines:
                members = (line.total, *line.parts)
                if sum(1 for m in members if m in suppressed) == 1:
                    extra = complement(line)
                    if extra is not None:
                        suppressed.add(extra)
                        changed = True
        found: list[tuple[Hashable, Sequence[Line]]] = []
        for i, group in enumerate(groups):
            now = frozenset(suppressed & members_of[i])
            if now != seen[i]:
                determined = determined_cells(group, now)
                found += [(c, group) for c in determined]
                seen[i] = None if determined else now
        if not found:
            return suppressed
        grew = False
        for cell, group in found:  # one complement for each determined cell, then check again
            if cell not in suppressed:
                continue
            own = set(map(id, group))
            for line in sorted(
                by_cell.get(cell, []),
                key=lambda ln: (
                    id(ln) not in own,  # a complement inside the system that determines it
                    sum(1 for m in (ln.total, *ln.parts) if m in suppressed),
                ),
            ):
                extra = complement(line)
                if extra is not None:
                    suppressed.add(extra)
                    grew = True
                    break
        if not grew:  # nothing left to suppress beside it: the whole table is suppressed
            return suppressed


def grid_lines(
    rows: Sequence[Hashable], cols: Sequence[Hashable], all_: Hashable = "*"
) -> list[Line]:
    """The lines of a two-way table with its margins: cells keyed ``(row, col)``, a margin by
    ``all_`` in its place (``(row, all_)`` the row total, ``(all_, all_)`` the grand total)."""
    lines = [Line((r, all_), tuple((r, c) for c in cols)) for r in (*rows, all_)]
    lines += [Line((all_, c), tuple((r, c) for r in rows)) for c in (*cols, all_)]
    return lines


def cell(value: int | float | None, suppressed: bool) -> Cell:
    return SUPPRESSED if suppressed else Cell(value=value)
