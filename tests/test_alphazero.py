"""Learning from search (``train.algorithm = "alphazero"``): the self-play records, the
outcome targets, the fit, exact resume and the settings."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from tiny import tiny_config, train_interrupted

from rltransfer.games import make
from rltransfer.games.core import BoardGame, State
from rltransfer.learn.alphazero import az_update, steps_for
from rltransfer.learn.search_selfplay import SearchSelfPlay
from rltransfer.learn.training import build_session, resume, train
from rltransfer.net.policy import PolicyNet, TaskShape, masked_logits
from rltransfer.play.players import _perfect_table
from rltransfer.runs.checkpoint import checkpoint_dir, load_weights
from rltransfer.specs.config import AlphaZeroConfig, ConfigError, NetConfig

AZ = ("train.algorithm=alphazero", "alphazero.simulations=4", "alphazero.num_steps=6",
      "alphazero.batch_size=16", "alphazero.replay_size=200")  # fmt: skip
SMALL = AlphaZeroConfig(simulations=4, num_steps=12, replay_size=500, batch_size=32)


def _player(game: BoardGame, cfg: AlphaZeroConfig = SMALL, boards: int = 8) -> SearchSelfPlay:
    return SearchSelfPlay("t", game, boards, cfg, torch.device("cpu"), torch.Generator())


def _net(game: BoardGame, seed: int = 0) -> PolicyNet:
    torch.manual_seed(seed)
    return PolicyNet({"t": TaskShape.of(game)}, NetConfig(channels=8, blocks=1, groups=2))


def test_a_finished_game_gives_each_position_the_result_for_its_mover() -> None:
    ttt = make("tic_tac_toe")
    p = _player(ttt, AlphaZeroConfig(replay_size=8), boards=2)
    p.pending_obs[0, :5] = torch.arange(5.0)[:, None, None, None]  # tell positions apart
    p.pending_mover[0, :5] = torch.tensor([0, 1, 0, 1, 0])
    p.length = torch.tensor([5, 3])
    p._finish(torch.tensor([True, False]), torch.tensor([1.0, 0.0]))  # player 0 won board 0
    assert p.filled == 5 and p.length.tolist() == [0, 3]  # board 1 plays on
    assert p.value[:5].tolist() == [1.0, -1.0, 1.0, -1.0, 1.0]
    assert p.obs[:5, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    p.pending_mover[1, :3] = torch.tensor([0, 1, 0])
    p._finish(torch.tensor([False, True]), torch.tensor([0.0, -1.0]))  # player 1 won board 1
    # the ring buffer of 8 holds the newest: 3 new positions after 5 old ones
    assert p.filled == 8 and p.cursor == 0
    assert p.value.tolist() == [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    stats = p.pop_stats()
    assert stats["games"] == 2 and stats["game_length"] == 4.0 and stats["draw_rate"] == 0.0


def _stones(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return obs[:, 0].flatten(1).sum(1), obs[:, 1].flatten(1).sum(1)  # own, opponent


def test_self_play_records_both_seats_with_improved_policy_targets() -> None:
    ttt = make("tic_tac_toe")
    p = _player(ttt)
    p.collect(_net(ttt))
    assert p.moves == 8 * 12 and p.steps_per_iteration == 96
    n = p.filled
    assert n > 0  # tic-tac-toe games end within 9 plies: some finished
    own, opponent = _stones(p.obs[:n])
    assert bool((own == opponent).any()) and bool((own + 1 == opponent).any())  # both seats
    assert bool(((own == opponent) | (own + 1 == opponent)).all())
    assert torch.allclose(p.policy[:n].sum(1), torch.ones(n))
    assert bool((p.policy[:n][~p.masks[:n]] == 0).all())
    assert set(p.value[:n].tolist()) <= {-1.0, 0.0, 1.0}
    stats = p.pop_stats()
    assert stats["searches"] == 96 and stats["improvement_kl"] >= 0
    assert -1 <= stats["root_value"] <= 1


def test_the_fit_lowers_the_losses_on_recorded_positions() -> None:
    ttt = make("tic_tac_toe")
    p = _player(ttt)
    net = _net(ttt)
    p.collect(net)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    assert steps_for({"t": p}, SMALL) == 12  # 4 x 96 new positions / 32 a minibatch
    first = az_update(net, opt, {"t": p}, {}, SMALL, gen)
    for _ in range(15):
        last = az_update(net, opt, {"t": p}, {}, SMALL, gen)
    assert last["t/policy"] < 0.9 * first["t/policy"]
    assert last["t/value"] < 0.7 * first["t/value"]
    assert last["mean/policy"] == last["t/policy"] and first["optimizer_steps"] == 12


def test_nothing_is_learned_before_a_game_has_finished() -> None:
    othello = make("othello", size=6)
    p = _player(othello, AlphaZeroConfig(simulations=2, num_steps=2, batch_size=4), boards=2)
    net = _net(othello)
    p.collect(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    stats = az_update(net, torch.optim.AdamW(net.parameters()), {"t": p}, {}, SMALL,
                      torch.Generator())  # fmt: skip
    assert stats == {} and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_an_alphazero_run_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = train(tiny_config(tmp_path, name="whole", overrides=AZ), tmp_path / "runs", quiet=True)
    cut = train_interrupted(
        tiny_config(tmp_path, name="cut", overrides=AZ), tmp_path / "runs", monkeypatch,
        signum=signal.SIGTERM, update="az_update",
    )  # fmt: skip
    resume(cut, quiet=True)
    wa, wb = load_weights(checkpoint_dir(whole)), load_weights(checkpoint_dir(cut))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], v) for k, v in _net_weights(tmp_path).items() if k in wa)


def _net_weights(tmp_path: Path) -> dict[str, torch.Tensor]:
    """A freshly built session's weights (to see that training moved them)."""
    return build_session(tiny_config(tmp_path, overrides=AZ), tmp_path).net.state_dict()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.algorithm=muzero", "train.algorithm must be one of ppo, alphazero"),
        ("alphazero.simulations=0", "alphazero.simulations"),
        ("alphazero.sample_reuse=0", "alphazero.sample_reuse must be a finite number > 0"),
    ],
)
def test_bad_alphazero_settings_are_refused(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(tmp_path, overrides=(override,))


def test_domain_confusion_is_refused_with_alphazero(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, overrides=(*AZ, "ppo.confusion_coef=0.1"))
    with pytest.raises(ConfigError, match="confusion_coef is PPO's"):
        build_session(cfg, tmp_path)


# ------------------------------------------------------------------ the learning check
def perfect_lines(net: PolicyNet, task: str, game: BoardGame, seat: int) -> list[float]:
    """The policy's results (argmax) against every line of the perfect player, which picks
    among its optimal moves: every choice it could make is played out."""
    table = _perfect_table()  # optimal-move bit sets by (mover, other) bitboards
    results = []

    def walk(state: State) -> None:
        if bool(state.terminated[0]):
            results.append(float(state.reward[0]) * (1 if seat == 0 else -1))
            return
        if int(state.current_player[0]) == seat:
            logits, _ = net(task, game.observe(state))
            move = masked_logits(logits, game.legal_mask(state)).argmax(1)
            walk(game.step(state, move))
            return
        best = int(table[int(state.mover[0]) * 512 + int(state.other[0])])
        for a in [k for k in range(9) if best >> k & 1]:  # every optimal move
            walk(game.step(state, torch.tensor([a])))

    with torch.no_grad():
        walk(game.init(1))
    return results


@pytest.mark.slow
def test_search_trained_tic_tac_toe_never_loses_to_the_perfect_player(tmp_path: Path) -> None:
    suite = tmp_path / "ttt.toml"
    suite.write_text('name = "ttt"\n[[games]]\nid = "tic_tac_toe"\nnum_envs = 64\n')
    from rltransfer.specs.config import make_train_config

    # 64 simulations over all 9 moves: with az_small's 16 the network still lost 2 of the
    # perfect player's 13 lines as first player after 300k positions (2026-12-02). With
    # 64 it lost none in either seat (5 and 120 lines; 86 minutes on 2 busy cores), though
    # checkpoints on the way lost 0-2 lines each: the bar is met at the end, not early.
    cfg = make_train_config(
        suite=str(suite), agent="az_small", name="ttt", total_steps=300_000, device="cpu",
        overrides=["train.eval_interval=1000", "train.final_eval_games=100",
                   "alphazero.simulations=64", "alphazero.max_considered=9"],
    )  # fmt: skip
    run = train(cfg, tmp_path / "runs", quiet=True)
    from rltransfer.inference import load_policy

    policy = load_policy(run)
    game = make("tic_tac_toe")
    for seat in (0, 1):
        lines = perfect_lines(policy.net, "tic_tac_toe", game, seat)
        assert len(lines) >= 1 and min(lines) >= 0.0, f"seat {seat}: lost a line"


def test_perfect_lines_enumerates_the_perfect_players_choices() -> None:
    game = make("tic_tac_toe")
    net = _net(game)
    lines = perfect_lines(net, "t", game, 1)  # perfect opens: every optimal opening
    assert len(lines) > 1 and all(r in (-1.0, 0.0, 1.0) for r in lines)
    assert max(lines) <= 0.0  # nobody beats the perfect player, least of all a random net


def test_a_transfer_experiment_runs_from_and_to_search_trained_runs(tmp_path: Path) -> None:
    from tiny import TINY

    from rltransfer.specs.config import TransferSettings, load_run_config
    from rltransfer.transfer.experiment import run_transfer

    source = train(tiny_config(tmp_path, name="src", overrides=AZ), tmp_path / "runs", quiet=True)
    settings = TransferSettings(mode="gradual", unfreeze_after=1, keep_heads=True, seeds=1)
    experiment = run_transfer(
        source, "tic_tac_toe", settings, steps=2 * 8 * 6, num_envs=8, name="exp",
        run_dir=tmp_path / "runs", overrides=[*TINY, *AZ], device="cpu", quiet=True,
    )  # fmt: skip
    for arm in ("transfer_seed0", "scratch_seed0"):  # both arms learn from search
        assert load_run_config(experiment / arm / "config.toml").train.algorithm == "alphazero"
        assert (experiment / arm / "eval.json").is_file()
    assert (experiment / "transfer.json").is_file()
