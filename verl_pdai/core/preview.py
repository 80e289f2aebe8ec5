"""The preview board: how the n sessions of one prompt share what the preview sessions found (pure asyncio).

All sessions of a prompt run as tasks in one event loop (verl's rollout worker runs a prompt's n sessions
together), so the board is a plain dict keyed by the prompt's ``uid``, never shared across prompts. Preview
sessions publish their verified outcome the moment they finish; the other sessions read a snapshot at their
injection point and never wait, unless the blocking mode (a study option) asks them to.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PreviewSnapshot:
    """What a session knows about its group's preview when it decides."""

    preview_size: int
    finished: int
    successes: int
    failed: int  # preview sessions that crashed or could not be verified: no evidence either way

    @property
    def running(self) -> int:
        return max(0, self.preview_size - self.finished - self.failed)


@dataclass
class _Group:
    preview_size: int
    group_size: int
    finished: int = 0
    successes: int = 0
    failed: int = 0
    joined: int = 0
    left: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    shared: dict[str, object] = field(default_factory=dict)  # per-prompt values computed once (the hints)

    def snapshot(self) -> PreviewSnapshot:
        return PreviewSnapshot(self.preview_size, self.finished, self.successes, self.failed)


def preview_size_for(group_size: int, preview_size: int) -> int:
    """Preview sessions of a group: at most n - 1, so a group always keeps a session that can be helped."""
    return max(0, min(preview_size, group_size - 1))


class PreviewBoard:
    """Per-process registry of live groups. Entries are removed when the group's last session leaves."""

    def __init__(self, max_groups: int = 100_000) -> None:
        self._groups: dict[str, _Group] = {}
        self.max_groups = max_groups

    def __len__(self) -> int:
        return len(self._groups)

    def join(self, uid: str, group_size: int, preview_size: int, session_index: int | None) -> tuple[int, bool]:
        """Register a session; returns (session index, is_preview).

        Without a session index (verl's legacy rollout path passes none), sessions are numbered in arrival
        order, which is their start order because all sessions of a prompt start together.
        """
        group = self._groups.get(uid)
        if group is None:
            while len(self._groups) >= self.max_groups:  # a group whose sessions never all left (n overridden)
                del self._groups[next(iter(self._groups))]
            group = self._groups[uid] = _Group(preview_size_for(group_size, preview_size), group_size)
        index = group.joined if session_index is None else int(session_index)
        group.joined += 1
        return index, index < group.preview_size

    def publish(self, uid: str, success: bool | None) -> None:
        """A preview session finished: ``success`` is its verified outcome, None when it failed to run or verify."""
        group = self._groups.get(uid)
        if group is None:
            return
        if success is None:
            group.failed += 1
        else:
            group.finished += 1
            group.successes += int(success)
        group.changed.set()
        group.changed = asyncio.Event()  # later waiters wait for the next change

    def snapshot(self, uid: str) -> PreviewSnapshot:
        group = self._groups.get(uid)
        return group.snapshot() if group is not None else PreviewSnapshot(0, 0, 0, 0)

    def shared(self, uid: str) -> dict[str, object]:
        """A per-group dict for values computed once per prompt (e.g. its hints)."""
        group = self._groups.get(uid)
        return group.shared if group is not None else {}

    async def wait_for_preview(self, uid: str, timeout_s: float) -> PreviewSnapshot:
        """Blocking mode only: wait until every preview session has finished, or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        while True:
            group = self._groups.get(uid)
            if group is None or group.snapshot().running == 0:
                return self.snapshot(uid)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return group.snapshot()
            try:
                await asyncio.wait_for(group.changed.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                return group.snapshot()

    def leave(self, uid: str) -> None:
        """A session is done (in any way); the last one out removes the group."""
        group = self._groups.get(uid)
        if group is None:
            return
        group.left += 1
        if group.left >= max(group.joined, group.group_size):
            del self._groups[uid]
