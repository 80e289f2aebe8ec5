"""State files: bounded JSON depth on load and cleanup of temporary files left by killed saves (issue 13, finding 7)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

import pytest

from verl_pdai.core import persistence
from verl_pdai.core.persistence import (
    MAX_STATE_DEPTH,
    load_state,
    nested_deeper_than,
    remove_stale_temps,
    save_atomic,
)
from verl_pdai.core.policy import InterventionPolicy
from verl_pdai.core.store import DifficultyStore

DEEP_LIST = b"[" * 5000 + b"]" * 5000
DEEP_DICT = b'{"a":' * 5000 + b"1" + b"}" * 5000
DEEP_IN_STATE = b'{"version": 1, "nested": ' + b"[" * 5000 + b"]" * 5000 + b"}"


# ---- depth ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "deeper"),
    [
        (b"[]", 1, False),
        (b"[[]]", 1, True),
        (b"{}", 0, True),
        (b"1", 0, False),
        (b'{"a": [1, {"b": "[[[[[[[["}]}', 3, False),  # brackets inside strings do not count
        (b'{"a\\"[[[[": [[]]}', 3, False),  # nor after an escaped quote
        (b'[{"x": [1]}, [[2]]]', 3, False),
        (b'[{"x": [1]}, [[[2]]]]', 3, True),
        (b"[[]", 2, False),  # unbalanced: the parser reports it, not the depth check
        (b"[]]]", 1, False),
        (b"[" * 64 + b"]" * 64, 64, False),
        (b"[" * 65 + b"]" * 65, 64, True),
    ],
)
def test_nested_deeper_than(text, limit, deeper):
    assert nested_deeper_than(text, limit) is deeper


@pytest.mark.parametrize("content", [DEEP_LIST, DEEP_DICT, DEEP_IN_STATE], ids=["list", "dict", "inside-a-state"])
def test_a_deeply_nested_state_file_is_a_corrupt_state(tmp_path, caplog, content):
    target = tmp_path / "pdai_state.json"
    target.write_bytes(content)
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_STATE_DEPTH} levels") as info:
        load_state(target)  # not a RecursionError
    assert str(target) in str(info.value) and "on_corrupt='fresh'" in str(info.value)
    with caplog.at_level(logging.WARNING, logger="verl_pdai.core.persistence"):
        assert load_state(target, on_corrupt="fresh") is None
    assert "starting fresh" in caplog.text
    with pytest.raises(ValueError, match="nested deeper"):
        DifficultyStore.load(target)
    assert len(DifficultyStore.load(target, on_corrupt="fresh")) == 0
    assert target.read_bytes() == content  # never modified


def test_recursion_error_of_the_parser_is_a_corrupt_state_too(tmp_path, monkeypatch):
    # Whatever the depth bound, a parser that runs out of stack must not escape as RecursionError.
    monkeypatch.setattr(persistence, "nested_deeper_than", lambda data, limit: False)
    target = tmp_path / "s.json"
    target.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_state(target)
    assert load_state(target, on_corrupt="fresh") is None


def test_real_states_are_far_below_the_depth_bound(tmp_path):
    store = DifficultyStore()
    store.update("p1", 3, 8, data_source="math", level="Level 3")
    state = {"format": "x", "version": 1, "store": store.state_dict(), "policy": InterventionPolicy().state_dict()}
    data = json.dumps(state).encode()
    assert not nested_deeper_than(data, 8)
    save_atomic(tmp_path / "pdai_state.json", state)
    assert load_state(tmp_path / "pdai_state.json") == json.loads(data)


def test_save_refuses_a_state_that_load_would_refuse(tmp_path):
    deep: list = []
    for _ in range(MAX_STATE_DEPTH):
        deep = [deep]
    with pytest.raises(ValueError, match="nests deeper than"):
        save_atomic(tmp_path / "s.json", {"deep": deep})
    assert os.listdir(tmp_path) == []


# ---- temporary files of killed saves ---------------------------------------------------------------------------


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_save_removes_stale_temp_files_of_the_same_state_file(tmp_path):
    target = tmp_path / "pdai_state.json"
    stale = [tmp_path / ".pdai_state.json.k2x_9abc.tmp", tmp_path / ".pdai_state.json.00000000.tmp"]
    fresh = tmp_path / ".pdai_state.json.fresh123.tmp"  # maybe another process's save in progress
    keep = [
        fresh,
        tmp_path / ".other.json.abcdefgh.tmp",  # another file's
        tmp_path / ".pdai_state.json.abc.tmp",  # not a name mkstemp makes
        tmp_path / ".pdai_state.json.abcdefgh.tmp.bak",
        tmp_path / "pdai_state.json.abcdefgh.tmp",
    ]
    for path in stale + keep:
        path.write_text('{"half": ')
        _age(path, persistence.STALE_TMP_AGE_S + 60)
    fresh.write_text('{"half": ')  # now: recent
    save_atomic(target, {"generation": 1})
    assert load_state(target) == {"generation": 1}
    assert sorted(os.listdir(tmp_path)) == sorted(["pdai_state.json", *(p.name for p in keep)])


def test_a_sibling_with_a_longer_name_keeps_its_temp_files(tmp_path):
    # ".a.json.XXXXXXXX.tmp" belongs to "a.json", never to "a"
    sibling_temp = tmp_path / ".a.json.abcdefgh.tmp"
    sibling_temp.write_text("x")
    _age(sibling_temp, persistence.STALE_TMP_AGE_S + 60)
    save_atomic(tmp_path / "a", {"x": 1})
    assert sibling_temp.exists()
    assert remove_stale_temps(tmp_path / "a.json") == [sibling_temp.name]


def test_a_save_in_progress_in_this_process_keeps_its_temp_file(tmp_path, monkeypatch):
    """Two saves of one file at once, with every temp file counted as stale: neither removes the other's."""
    monkeypatch.setattr(persistence, "STALE_TMP_AGE_S", 0.0)
    target = tmp_path / "pdai_state.json"
    real_fsync = os.fsync
    in_fsync, go_on = threading.Event(), threading.Event()

    def slow_fsync(fd: int) -> None:
        if threading.current_thread() is first and not in_fsync.is_set():
            in_fsync.set()  # the first save's temp file is written, not yet renamed
            assert go_on.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(persistence.os, "fsync", slow_fsync)
    errors: list[BaseException] = []

    def save_first() -> None:
        try:
            save_atomic(target, {"generation": 1})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    first = threading.Thread(target=save_first)
    first.start()
    assert in_fsync.wait(30)
    (temp,) = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    save_atomic(target, {"generation": 2})  # removes stale temps: not the first save's
    assert temp in os.listdir(tmp_path)
    go_on.set()
    first.join(30)
    assert not errors
    assert load_state(target) == {"generation": 1}  # the first save renamed its (intact) file last
    assert os.listdir(tmp_path) == ["pdai_state.json"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_saves_while_a_parent_thread_holds_the_temp_file_lock(tmp_path):
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with persistence._live_tmp_lock:
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                save_atomic(tmp_path / "child.json", {"child": True})
            finally:
                os._exit(0)
        deadline = time.monotonic() + 30
        while not os.waitpid(pid, os.WNOHANG)[0]:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung on a lock held by a thread of its parent")
            time.sleep(0.02)
    finally:
        release.set()
        holder.join()
    assert load_state(tmp_path / "child.json") == {"child": True}
