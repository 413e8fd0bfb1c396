"""What the projector keeps of its last commit: jobs still going, within bounds, for as long as
the position and its token are the ones that commit wrote."""

from __future__ import annotations

from datetime import UTC, datetime

from backfill_projector.known import KnownRows, Mark
from backfill_projector.rows import Changes, ChunkRow, JobRow

T = datetime(2024, 1, 2, tzinfo=UTC)


def _changes(*jobs: tuple[str, str, int]) -> Changes:
    """Jobs as (id, status, number of chunks)."""
    changes = Changes()
    for job_id, status, chunks in jobs:
        changes.jobs[job_id] = JobRow(job_id, "sim", "X", "1m", T, T, {}, None, status, 1, T, T, 1)
        for index in range(chunks):
            changes.chunks[(job_id, index)] = ChunkRow(job_id, index, T, T)
    return changes


def _commit(known: KnownRows, changes: Changes, position: str = "1-0") -> None:
    known.stage(changes, Mark(position, f"token-{position}"))
    known.committed()


def test_jobs_still_going_are_lent_with_all_their_chunks() -> None:
    known = KnownRows()
    _commit(known, _changes(("a", "running", 3), ("b", "succeeded", 2), ("c", "queued", 0)))
    assert sorted(known.jobs) == ["a", "c"]  # an ended job is read again if it hears more

    known.check("1-0", "token-1-0")
    lent = Changes()
    assert known.lend(lent, {"a", "b", "c", "d"}) == {"b", "d"}
    assert sorted(lent.jobs) == ["a", "c"]
    assert sorted(lent.chunks) == [("a", 0), ("a", 1), ("a", 2)]
    assert known.chunk_count == 3


def test_a_position_or_token_not_its_own_forgets_everything() -> None:
    for position, token in [("2-0", "token-1-0"), ("1-0", "someone-else"), (None, None)]:
        known = KnownRows()
        _commit(known, _changes(("a", "running", 2)))
        known.check(position, token)
        assert (known.jobs, known.chunks, known.chunk_count, known.mark) == ({}, {}, 0, None)


def test_nothing_staged_is_kept_until_committed() -> None:
    known = KnownRows()
    known.stage(_changes(("a", "running", 1)), Mark("1-0", "t"))
    known.forget()  # the transaction failed
    known.committed()
    assert known.jobs == {}
    assert known.mark is None


def test_the_oldest_jobs_go_first_when_jobs_or_chunks_are_over_their_bounds() -> None:
    known = KnownRows(max_jobs=3, max_chunks=10)
    _commit(known, _changes(("a", "running", 1), ("b", "running", 1), ("c", "running", 1)))
    _commit(known, _changes(("a", "running", 2)), "2-0")  # folded again: now the newest
    _commit(known, _changes(("d", "running", 1)), "3-0")
    assert list(known.jobs) == ["c", "a", "d"]
    assert known.chunk_count == 4

    _commit(known, _changes(("e", "running", 9)), "4-0")
    assert list(known.jobs) == ["d", "e"]  # 10 chunks at most: d's and e's
    assert known.chunk_count == 10

    _commit(known, _changes(("e", "failed", 9)), "5-0")
    assert (list(known.jobs), known.chunk_count) == (["d"], 1)
