"""Cross-game transfer with a mapped stem and copied heads (``--stem-from``, ``--heads-from``,
``--reset-last``): copies are exact, unmatched planes start at zero, refusals are clear."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import tiny_config

from rltransfer.games import make
from rltransfer.learn.training import train
from rltransfer.net.policy import PolicyNet, TaskShape
from rltransfer.runs.checkpoint import NetworkMeta, checkpoint_dir, load_weights, read_network
from rltransfer.specs.config import GameSpec, NetConfig
from rltransfer.transfer import TransferError, transfer_net
from rltransfer.transfer.network import pick_source_task


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-iteration run on tic-tac-toe (own, opponent) and Othello 6x6 (own, opponent,
    black_to_move)."""
    tmp = tmp_path_factory.mktemp("mapped")
    return train(tiny_config(tmp, iterations=1), tmp / "runs", quiet=True)


def _source_net(source: Path) -> PolicyNet:
    ckpt = checkpoint_dir(source)
    meta = read_network(ckpt)
    net = PolicyNet(meta.tasks, meta.net)
    net.load_state_dict(load_weights(ckpt))
    return net.eval()


def _mapped(source: Path, target: str, **kw: object) -> PolicyNet:
    game_id, _, size = target.partition(":")
    game = make(game_id, **({"size": int(size)} if size else {}))
    torch.manual_seed(0)
    return transfer_net(source, "target", game, **kw).eval()  # type: ignore[arg-type]


def test_a_stem_mapped_to_fewer_planes_computes_the_sources_output(source: Path) -> None:
    """Othello's stem (own, opponent, black_to_move) -> Connect Four (own, opponent): on
    positions whose black_to_move plane is zero both compute the same."""
    net, src = _mapped(source, "connect_four", stem_from="othello_size6"), _source_net(source)
    x = (torch.rand(5, 2, 6, 7, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    with torch.no_grad():
        mine = net.stems["target"](x)
        theirs = src.stems["othello_size6"](torch.cat([x, torch.zeros(5, 1, 6, 7)], dim=1))
    assert torch.equal(mine, theirs)  # bit for bit: the extra plane adds exact zeros


def test_a_plane_the_source_lacks_starts_at_zero_weight(source: Path) -> None:
    """Tic-tac-toe's stem (own, opponent) -> Othello (own, opponent, black_to_move)."""
    net, src = _mapped(source, "othello:8", stem_from="tic_tac_toe"), _source_net(source)
    kernel = net.stems["target"].state_dict()["conv.weight"]
    source_kernel = src.stems["tic_tac_toe"].state_dict()["conv.weight"]
    assert torch.equal(kernel[:, :2], source_kernel)
    assert torch.count_nonzero(kernel[:, 2]) == 0
    x = (torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    with torch.no_grad():  # the black_to_move plane changes nothing yet
        assert torch.equal(net.stems["target"](x), src.stems["tic_tac_toe"](x[:, :2]))


def test_heads_are_copied_and_the_pass_logit_is_fresh_or_dropped(source: Path) -> None:
    src = _source_net(source).state_dict()
    fresh = _mapped(source, "othello:8").state_dict()  # same seed: the fresh heads
    into_othello = _mapped(source, "othello:8", heads_from="tic_tac_toe").state_dict()
    for k in ("hidden.weight", "hidden.bias", "out.weight", "out.bias"):
        assert torch.equal(
            into_othello[f"policy_heads.target.{k}"], src[f"policy_heads.tic_tac_toe.{k}"]
        )
    for k in ("pass_logit.weight", "pass_logit.bias"):  # tic-tac-toe has no pass: fresh
        assert torch.equal(
            into_othello[f"policy_heads.target.{k}"], fresh[f"policy_heads.target.{k}"]
        )
    for k, v in into_othello.items():
        if k.startswith("value_heads.target."):
            assert torch.equal(v, src[k.replace(".target.", ".tic_tac_toe.")])
    into_c4 = _mapped(source, "connect_four", heads_from="othello_size6").state_dict()
    assert not any("pass_logit" in k for k in into_c4)  # Othello's pass has no place here
    assert torch.equal(
        into_c4["policy_heads.target.out.weight"], src["policy_heads.othello_size6.out.weight"]
    )


def test_reset_last_reinitialises_exactly_the_last_layers(source: Path) -> None:
    kept = _mapped(source, "othello:8", stem_from="auto", heads_from="auto").state_dict()
    reset = _mapped(
        source, "othello:8", stem_from="auto", heads_from="auto", reset_last=True
    ).state_dict()
    last = {
        "policy_heads.target.out.",
        "policy_heads.target.pass_logit.",
        "value_heads.target.fc2.",
    }
    for k in kept:
        if any(k.startswith(p) for p in last):
            assert not torch.equal(kept[k], reset[k]), k
        else:
            assert torch.equal(kept[k], reset[k]), k


def test_auto_picks_the_best_plane_match_and_refuses_ties() -> None:
    specs = {s.name: s for s in (GameSpec("tic_tac_toe"), GameSpec("hex", {"size": 5}),
                                 GameSpec("othello", {"size": 6}))}  # fmt: skip
    meta = NetworkMeta(NetConfig(), {k: TaskShape.of(s.make()) for k, s in specs.items()}, specs)
    othello = make("othello", size=8)
    assert pick_source_task(meta, othello, "auto", Path("run"), "--stem-from") == "othello_size6"
    with pytest.raises(TransferError, match=r"tic_tac_toe, hex_size5 .* equally well"):
        pick_source_task(meta, make("connect_four"), "auto", Path("run"), "--stem-from")
    assert (
        pick_source_task(meta, make("connect_four"), "hex_size5", Path("run"), "--x") == "hex_size5"
    )
    with pytest.raises(TransferError, match="no such task; its tasks: tic_tac_toe"):
        pick_source_task(meta, othello, "chess", Path("run"), "--stem-from")
    go = make("pettingzoo:go_v5", board_size=5)  # its planes are unknown
    with pytest.raises(TransferError, match="shares a plane with pettingzoo:go_v5"):
        pick_source_task(meta, go, "auto", Path("run"), "--stem-from")


def test_what_cannot_map_is_refused(source: Path) -> None:
    with pytest.raises(TransferError, match="flat policy head"):
        _mapped_game(source, make("pettingzoo:connect_four_v3"), heads_from="tic_tac_toe")
    with pytest.raises(TransferError, match="one or the other"):
        _mapped(source, "othello:6", keep_heads=True, stem_from="auto")
    with pytest.raises(TransferError, match="--reset-last resets copied heads"):
        _mapped(source, "connect_four", stem_from="auto", reset_last=True)


def _mapped_game(source: Path, game: object, **kw: object) -> PolicyNet:
    torch.manual_seed(0)
    return transfer_net(source, "target", game, **kw)  # type: ignore[arg-type]


def test_the_cli_runs_a_mapped_transfer(source: Path, tmp_path: Path) -> None:
    from tiny import TINY

    from rltransfer.cli import main

    args = [
        "transfer", "--from", str(source), "--to", "connect_four", "--stem-from", "--heads-from",
        "tic_tac_toe", "--steps", "64", "--num-envs", "8", "--seeds", "1", "--baseline", "none",
        "--run-dir", str(tmp_path), "--name", "mapped", "--quiet", "--device", "cpu",
        *[a for t in TINY for a in ("--set", t)],
    ]  # fmt: skip
    assert main(args) == 0
    config = (tmp_path / "mapped" / "transfer_seed0" / "config.toml").read_text()
    assert 'stem_from = "auto"' in config and 'heads_from = "tic_tac_toe"' in config
    report = (tmp_path / "mapped" / "transfer_report.md").read_text()
    assert "stem from auto, heads from tic_tac_toe" in report
