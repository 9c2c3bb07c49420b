"""Checkpoints: the atomic pointer swap under injected kills, history, checksums, untrusted
metadata, file modes."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from tiny import tiny_config

import rltransfer
from rltransfer import checkpoint
from rltransfer.learn.training import resume, train
from rltransfer.runs.checkpoint import (
    CheckpointError,
    checkpoint_dir,
    clean_leftovers,
    load_meta,
    load_trainer,
    load_weights,
    read_network,
    save_checkpoint,
    versions_in,
)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even cleanup (rmtree is patched)."""


def _weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((3, 2), value), "b": torch.arange(4.0)}


def _save(run: Path, iteration: int, **kw: Any) -> Path:
    meta = {"iteration": iteration, "global_step": 10 * iteration}
    return save_checkpoint(run, _weights(float(iteration)), meta, {"iteration": iteration}, **kw)


def _loaded_iteration(run: Path) -> int:
    """The iteration of the checkpoint a reader finds; its files must all load."""
    ckpt = checkpoint_dir(run)
    meta = load_meta(ckpt)
    weights = load_weights(ckpt)
    assert torch.equal(weights["w"], torch.full((3, 2), float(meta["iteration"])))
    assert load_trainer(ckpt)["iteration"] == meta["iteration"]
    return int(meta["iteration"])


_FS_STEPS = ("rename", "symlink", "replace")


def _fs_calls(monkeypatch: pytest.MonkeyPatch, on_call: Callable[[str, int], None]) -> None:
    """Route checkpoint's rename / symlink / replace through ``on_call(name, n)`` first."""
    count = {"n": 0}
    for name in _FS_STEPS:
        real = getattr(os, name)

        def wrapped(*args: Any, _real: Any = real, _name: str = name) -> Any:
            count["n"] += 1
            on_call(_name, count["n"])
            return _real(*args)

        monkeypatch.setattr(checkpoint.os, name, wrapped)


def test_a_kill_between_any_two_steps_of_the_swap_leaves_a_loadable_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one undisturbed save counts the filesystem steps of a save (after the first one)
    probe = tmp_path / "probe"
    _save(probe, 1)
    steps: list[str] = []
    with monkeypatch.context() as m:
        _fs_calls(m, lambda name, n: steps.append(name))
        _save(probe, 2)
    assert steps == ["rename", "symlink", "replace"]  # version folder, new link, the swap

    for k in range(1, len(steps) + 1):
        run = tmp_path / f"run{k}"
        _save(run, 1)

        def kill_at(name: str, n: int, k: int = k) -> None:
            if n == k:
                raise Killed

        with monkeypatch.context() as m:
            _fs_calls(m, kill_at)
            m.setattr(checkpoint.shutil, "rmtree", lambda *a, **kw: None)
            with pytest.raises(Killed):
                _save(run, 2)
        # a reader finds a whole checkpoint: the old one or, once renamed, the new one
        assert _loaded_iteration(run) in (1, 2)
        # the next writer cleans up and saves normally
        clean_leftovers(run)
        assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
        _save(run, 3)
        assert _loaded_iteration(run) == 3
        assert (run / "checkpoints" / "latest").is_symlink()


def test_an_exception_mid_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(tmp_path, 1)

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=r"cannot write a checkpoint.*previous checkpoint"):
        _save(tmp_path, 2)
    assert _loaded_iteration(tmp_path) == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_an_older_versions_layout_is_read_and_migrated(tmp_path: Path) -> None:
    # the old layout: checkpoints/latest/ a real folder; a crash between its two renames
    # left only .old and .writing-* (no latest) - readers must still find a checkpoint
    _save(tmp_path / "new", 4)
    old_root = tmp_path / "old" / "checkpoints"
    old_root.mkdir(parents=True)
    (tmp_path / "new" / "checkpoints" / "latest").resolve().rename(old_root / ".old")
    assert _loaded_iteration(tmp_path / "old") == 4
    (old_root / ".old").rename(old_root / "latest")  # a plain old-style latest/ folder
    assert _loaded_iteration(tmp_path / "old") == 4
    _save(tmp_path / "old", 5)
    assert (old_root / "latest").is_symlink() and _loaded_iteration(tmp_path / "old") == 5
    assert [p.name for p in versions_in(old_root)] == ["ckpt-0000004", "ckpt-0000005"]


def test_every_file_and_folder_is_fsynced_before_the_pointer_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        synced.append(f"replace {Path(dst).name}")
        os.rename(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    _save(tmp_path, 1)
    swap = synced.index("replace latest")
    before = synced[:swap]
    for name in ("model.safetensors", "meta.json", "trainer.pt", "checkpoints"):
        assert name in before, (name, synced)
    # the version folder, while still under its temporary name, before its rename
    assert any(name.startswith(".writing-") for name in before), synced
    assert before.index("checkpoints") > before.index("trainer.pt")


def test_history_keeps_the_last_few_and_milestones(tmp_path: Path) -> None:
    for it in range(1, 13):
        _save(tmp_path, it, keep=2, milestone=5)
    kept = [p.name for p in versions_in(tmp_path / "checkpoints")]
    # first of blocks [0,5), [5,10), [10,15), plus the last two
    assert kept == ["ckpt-0000001", "ckpt-0000005", "ckpt-0000010", "ckpt-0000011", "ckpt-0000012"]
    assert (tmp_path / "checkpoints" / "latest").resolve().name == "ckpt-0000012"
    # each version folder is a checkpoint of its own, e.g. for a ladder
    assert load_meta(tmp_path / "checkpoints" / "ckpt-0000005")["iteration"] == 5


def test_a_second_save_at_the_same_iteration_gets_its_own_folder(tmp_path: Path) -> None:
    _save(tmp_path, 3)
    _save(tmp_path, 3)  # e.g. a NaN stop right after a resume
    names = [p.name for p in versions_in(tmp_path / "checkpoints")]
    assert names == ["ckpt-0000003", "ckpt-0000003-1"]
    assert (tmp_path / "checkpoints" / "latest").resolve().name == "ckpt-0000003-1"


def test_files_are_readable_by_others_like_the_rest_of_the_run(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _save(tmp_path, 1)
    finally:
        os.umask(old)
    ckpt = (tmp_path / "checkpoints" / "latest").resolve()
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o755
    for f in ckpt.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name


# ------------------------------------------------------------------ untrusted contents
def test_scrambled_weights_fail_their_checksum(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    path = checkpoint_dir(tmp_path) / "model.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF  # tensor data, the header stays valid
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_weights(checkpoint_dir(tmp_path))


def test_non_finite_weights_are_refused_on_save_and_on_load(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"refusing to save non-finite weights.*'w'"):
        save_checkpoint(tmp_path, {"w": torch.tensor([1.0, float("nan")])}, {"iteration": 1})
    assert not versions_in(tmp_path / "checkpoints")
    _save(tmp_path, 1)
    ckpt = checkpoint_dir(tmp_path)
    save_file({"w": torch.full((3, 2), float("inf")), "b": torch.arange(4.0)},
              ckpt / "model.safetensors")  # fmt: skip
    meta = load_meta(ckpt)
    del meta["weights_sha256"]  # as an older checkpoint without a checksum
    (ckpt / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="holds non-finite weights"):
        load_weights(ckpt)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ckpt")
    return train(tiny_config(tmp, iterations=1), tmp / "runs", quiet=True)


def _edited_copy(run: Path, tmp: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    ckpt = tmp / "ckpt"
    ckpt.mkdir()
    src = checkpoint_dir(run)
    for f in src.iterdir():
        (ckpt / f.name).write_bytes(f.read_bytes())
    meta = json.loads((ckpt / "meta.json").read_text())
    edit(meta)
    (ckpt / "meta.json").write_text(json.dumps(meta))
    return ckpt


def test_huge_sizes_in_meta_json_are_refused_before_anything_is_allocated(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = _edited_copy(run, tmp_path, lambda m: m["net"].update(channels=200_000))
    allocations = []
    monkeypatch.setattr(
        "rltransfer.net.policy.PolicyNet.__init__",
        lambda *a, **kw: allocations.append(a) or (_ for _ in ()).throw(AssertionError),
    )
    with pytest.raises(CheckpointError, match=r"net\.channels must be an integer in \[1, 4096\]"):
        rltransfer.load_policy(ckpt)
    assert allocations == []


def test_meta_json_that_disagrees_with_the_weights_header_is_refused(
    run: Path, tmp_path: Path
) -> None:
    ckpt = _edited_copy(run, tmp_path, lambda m: m["net"].update(channels=64))
    with pytest.raises(CheckpointError, match=r"meta\.json and model\.safetensors disagree"):
        read_network(ckpt)


def test_a_hostile_game_id_in_meta_json_never_runs(run: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    def hostile(meta: dict[str, Any]) -> None:
        game = meta["suite"]["games"][0]
        game["id"] = "pettingzoo:subprocess.check_call"
        game["options"] = {"args": f"touch {marker}", "shell": True}

    ckpt = _edited_copy(run, tmp_path, hostile)
    policy = rltransfer.load_policy(ckpt)  # the weights are fine; the game is only data
    with pytest.raises(KeyError, match="unknown PettingZoo env"):
        policy.make_game(policy.games[0])
    assert not marker.exists()


def test_a_damaged_latest_is_an_error_not_a_silent_step_back(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    _save(tmp_path, 2)
    (checkpoint_dir(tmp_path) / "meta.json").unlink()  # deleted by hand, not by a crash
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint \(no meta\.json\).*ckpt-0+1"):
        checkpoint_dir(tmp_path)


def test_resume_of_a_damaged_checkpoint_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    path = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    (checkpoint_dir(path) / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        resume(path, total_steps=10_000, quiet=True)
    assert json.loads((path / "eval.json").read_text())["global_step"] > 0  # untouched


class _RunsCode:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("true",))


def test_a_trainer_state_that_would_run_code_is_refused_in_one_line(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    ckpt = checkpoint_dir(tmp_path)
    torch.save({"iteration": _RunsCode()}, ckpt / "trainer.pt")
    with pytest.raises(CheckpointError) as info:
        load_trainer(ckpt)
    message = str(info.value)
    assert "\n" not in message and "GLOBAL posix.system" in message
    assert "weights_only` set to `False" not in message  # never advise running the file


def test_a_deeply_nested_meta_json_is_one_clear_error(run: Path, tmp_path: Path) -> None:
    ckpt = _edited_copy(run, tmp_path, lambda m: None)
    (ckpt / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="cannot read checkpoint metadata"):
        rltransfer.load_policy(ckpt)
