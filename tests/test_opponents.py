"""Opponents: greedy wins and blocks on scripted boards, batched tactics == a per-board loop,
the policy player only plays legal moves and is seedable."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rltransfer.games import make
from rltransfer.games.connect_four import ConnectFour
from rltransfer.games.core import Game, State
from rltransfer.games.hex import Hex
from rltransfer.games.tic_tac_toe import TicTacToe, TicTacToeState
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape
from rltransfer.play.players import (
    GreedyPlayer,
    PolicyPlayer,
    RandomPlayer,
    make_player,
    threat_actions,
    winning_actions,
)

SMALL_NET = NetConfig(
    channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8, groups=2
)


def scripted(game: Game, actions: list[int], n: int = 1) -> State:
    """``n`` copies of the position after ``actions`` (cell actions)."""
    state = game.init(n)
    for a in actions:
        state = game.step(state, torch.full((n,), a, dtype=torch.int64))
    return state


def c4_columns(game: ConnectFour, columns: list[int], n: int = 1) -> State:
    """``n`` copies of the Connect Four position after dropping stones in ``columns``."""
    state = game.init(n)
    for col in columns:
        state = game.step(state, game.column_to_action(state, torch.full((n,), col)))
    return state


def greedy_moves(game: Game, state: State, seed: int = 0) -> set[int]:
    """Every action the greedy player picked over the (many copied) boards of ``state``."""
    gen = torch.Generator().manual_seed(seed)
    return set(GreedyPlayer().act(game, state, gen).tolist())


# ----------------------------------------------------------------- greedy, scripted
def test_greedy_connect_four_takes_the_win_over_the_block() -> None:
    game = ConnectFour(illegal_action="raise")
    # X: three in column 0; O: three in column 1; X to move: winning beats blocking.
    state = c4_columns(game, [0, 1, 0, 1, 0, 1], n=200)
    win = game.column_to_action(state.index(0), torch.tensor([0]))
    assert greedy_moves(game, state) == {int(win)}
    after = game.step(state, GreedyPlayer().act(game, state, None))
    assert bool(after.terminated.all()) and bool((after.reward == 1).all())


def test_greedy_connect_four_blocks_when_it_cannot_win() -> None:
    game = ConnectFour(illegal_action="raise")
    # X has three in column 0, O (to move) has two in column 1 and no win.
    state = c4_columns(game, [0, 1, 0, 1, 0], n=200)
    block = game.column_to_action(state.index(0), torch.tensor([0]))
    assert int(block) == 2 * 7 + 0  # row 2, column 0: the cell above X's three
    assert greedy_moves(game, state) == {int(block)}


def test_greedy_connect_four_blocks_a_horizontal_threat() -> None:
    game = ConnectFour(illegal_action="raise")
    # X: bottom row columns 1, 2, 3; O stacked on 1 and 2; O to move must take 0 or 4.
    state = c4_columns(game, [1, 1, 2, 2, 3], n=400)
    bottom = 5 * 7
    assert greedy_moves(game, state) == {bottom + 0, bottom + 4}


def test_greedy_tic_tac_toe_wins_uniformly_among_wins() -> None:
    game = TicTacToe(illegal_action="raise")
    # X: 0, 1, 3 (wins at 2 and 6); O: 5, 7, 8 (would win at 2 or 6 too); X to move.
    state = scripted(game, [0, 5, 1, 7, 3, 8], n=400)
    assert greedy_moves(game, state) == {2, 6}


def test_greedy_tic_tac_toe_blocks_uniformly_among_threats() -> None:
    game = TicTacToe(illegal_action="raise")
    # X: 0, 3, 4 threatens 5, 6 and 8; O (1, 2) has no win and must block one.
    state = scripted(game, [0, 1, 3, 2, 4], n=400)
    assert greedy_moves(game, state) == {5, 6, 8}
    # one threat, no win: the block is forced
    assert greedy_moves(game, scripted(game, [0, 3, 1], n=50)) == {2}


def test_greedy_without_a_threat_plays_every_legal_move() -> None:
    game = TicTacToe()
    state = game.init(2000)
    assert greedy_moves(game, state) == set(range(9))


class _TicTacToeNoNullMove(TicTacToe):
    def null_move(self, state: State) -> TicTacToeState:
        raise NotImplementedError("no null move")


def test_greedy_falls_back_to_win_or_random_without_null_move() -> None:
    game = _TicTacToeNoNullMove()
    block_position = scripted(game, [0, 3, 1], n=500)
    with pytest.raises(NotImplementedError, match="null_move"):
        threat_actions(game, block_position)
    assert greedy_moves(game, block_position) == {2, 4, 5, 6, 7, 8}  # blind to the threat
    assert greedy_moves(game, scripted(game, [0, 3, 1, 4], n=50)) == {2}  # still wins


def test_greedy_hex_blocks_in_the_movers_frame() -> None:
    """Player 1's actions are the transposed board: the block must be mapped into it."""
    game = Hex(size=5, illegal_action="raise")
    state = game.init(100)
    x_cells, o_cells = [0, 5, 10, 15], [12, 13, 18]  # X: column 0 rows 0..3, gap at (4, 0)
    for k in range(7):
        cell = (x_cells if k % 2 == 0 else o_cells)[k // 2]
        state = game.step(state, game.view_action(state, torch.full((100,), cell)))
    action = GreedyPlayer().act(game, state, torch.Generator().manual_seed(0))
    assert set(game.board_action(state, action).tolist()) == {20}  # board cell (4, 0)
    assert set(action.tolist()) == {4}  # (4, 0) transposed: O's action (0, 4)


# ------------------------------------------------------- batched == per-board loop
def random_positions(game: Game, n: int, plies: list[int], seed: int) -> State:
    """Positions after each of ``plies`` random plies on ``n`` boards (some finished)."""
    gen = torch.Generator().manual_seed(seed)
    state, snaps = game.init(n), []
    for ply in range(max(plies) + 1):
        if ply in plies:
            snaps.append(state)
        state = game.step(state, game.random_action(state, gen))
    return type(state).cat(snaps)


def naive_wins(game: Game, state: State) -> Tensor:
    """Reference for ``winning_actions``: one board and one legal action at a time."""
    out = torch.zeros(state.batch_size, game.num_actions, dtype=torch.bool)
    for i in range(state.batch_size):
        board = state.index(i)
        if bool(board.terminated[0]):
            continue
        mover = int(board.current_player[0])
        for a in game.legal_mask(board)[0].nonzero()[:, 0].tolist():
            after = game.step(board, torch.tensor([a]))
            out[i, a] = bool(after.terminated[0]) and float(after.rewards[0, mover]) == 1.0
    return out


def naive_threats(game: Game, state: State) -> Tensor:
    """Reference for ``threat_actions``: the opponent's wins after a null move, mapped one
    board at a time through board cells into the mover's frame (Hex; identity elsewhere)."""
    theirs = naive_wins(game, game.null_move(state))
    if not isinstance(game, Hex):
        return theirs
    out = torch.zeros_like(theirs)
    for i in range(state.batch_size):
        for b in theirs[i].nonzero()[:, 0].tolist():
            cell = game.board_action(game.null_move(state.index(i)), torch.tensor([b]))
            out[i, game.view_action(state.index(i), cell)] = True
    return out


@pytest.mark.parametrize(
    ("game_id", "options", "plies"),
    [
        ("tic_tac_toe", {}, [3, 4, 5, 6, 7]),
        ("connect_four", {}, [12, 18, 24, 30]),
        ("hex", {"size": 5}, [9, 11, 14, 17]),
    ],
)
def test_winning_and_threat_actions_match_a_per_board_loop(
    game_id: str, options: dict[str, int], plies: list[int]
) -> None:
    game = make(game_id, **options)
    state = random_positions(game, 24, plies, seed=1)
    wins = winning_actions(game, state)
    assert torch.equal(wins, naive_wins(game, state))
    threats = threat_actions(game, state)
    assert torch.equal(threats, naive_threats(game, state))
    # the positions must hold enough tactics for the comparison to mean something
    assert int(wins.any(dim=1).sum()) >= 5 and int(threats.any(dim=1).sum()) >= 5
    assert not bool(wins[state.terminated].any())


# -------------------------------------------------------------------- policy player
def untrained_player(game: Game, sample: bool = True) -> PolicyPlayer:
    torch.manual_seed(0)
    net = PolicyNet({"c4": TaskShape.of(game)}, SMALL_NET)
    return PolicyPlayer(net, "c4", sample=sample)


def self_play_actions(game: Game, player: PolicyPlayer, n: int, seed: int) -> Tensor:
    """[plies, n] actions of ``player`` against itself from the start position."""
    gen = torch.Generator().manual_seed(seed)
    state, actions = game.init(n), []
    while not bool(state.terminated.all()):
        action = player.act(game, state, gen)
        actions.append(torch.where(state.terminated, -1, action))
        state = game.step(state, action)
    return torch.stack(actions)


@pytest.mark.parametrize("sample", [True, False])
def test_policy_player_plays_only_legal_moves(sample: bool) -> None:
    game = ConnectFour(illegal_action="raise")  # an illegal move would raise in step
    player = untrained_player(game, sample)
    self_play_actions(game, player, 64, seed=0)
    state = random_positions(game, 64, [5, 15, 25], seed=2)
    action = player.act(game, state, torch.Generator().manual_seed(3))
    assert bool(game.legal_mask(state).gather(1, action[:, None]).all())


def test_policy_player_sampling_follows_the_generator() -> None:
    game = ConnectFour()
    sampling = untrained_player(game, sample=True)
    first = self_play_actions(game, sampling, 8, seed=1)
    assert torch.equal(first, self_play_actions(game, sampling, 8, seed=1))
    assert not torch.equal(first, self_play_actions(game, sampling, 8, seed=2))
    argmax = untrained_player(game, sample=False)
    greedy_games = self_play_actions(game, argmax, 8, seed=1)
    assert torch.equal(greedy_games, self_play_actions(game, argmax, 8, seed=2))
    assert bool((greedy_games == greedy_games[:, :1]).all())  # every board the same game


def test_policy_player_rejects_an_unknown_task() -> None:
    net = PolicyNet({"c4": TaskShape.of(ConnectFour())}, SMALL_NET)
    with pytest.raises(KeyError, match="c4"):
        PolicyPlayer(net, "othello")


# ---------------------------------------------------------------------- registry
def test_make_player_by_name() -> None:
    assert isinstance(make_player("random"), RandomPlayer)
    assert isinstance(make_player("greedy"), GreedyPlayer)
    assert make_player("greedy").name == "greedy"
    with pytest.raises(ValueError, match="greedy, perfect, random"):
        make_player("minimax")


def test_perfect_tic_tac_toe_never_loses_and_scores_094_against_random() -> None:
    from rltransfer.play.evaluate import play_match
    from rltransfer.play.players import PerfectTicTacToe

    game = make("tic_tac_toe")
    perfect = PerfectTicTacToe()
    gen = torch.Generator().manual_seed(0)
    vs_random = play_match(game, perfect, make_player("random"), 4000, gen)
    assert vs_random.losses == 0
    assert abs(vs_random.score - 0.94) < 0.015
    vs_self = play_match(game, perfect, make_player("perfect"), 200, gen)
    assert vs_self.draws == 200  # perfect play is a draw
    vs_greedy = play_match(game, perfect, make_player("greedy"), 400, gen)
    assert vs_greedy.losses == 0


class _Lowest:
    name = "lowest"

    def act(self, game: Game, state: State, generator: torch.Generator | None) -> Tensor:
        return game.legal_mask(state).to(torch.uint8).argmax(dim=1)


class _Highest:
    name = "highest"

    def act(self, game: Game, state: State, generator: torch.Generator | None) -> Tensor:
        return (game.num_actions - 1) - game.legal_mask(state).flip(1).to(torch.uint8).argmax(dim=1)


def test_mixed_player_gives_each_part_its_share_of_the_boards() -> None:
    from rltransfer.play.players import MixedPlayer, split_boards

    game = make("tic_tac_toe")
    state = game.init(10)
    mix = MixedPlayer([(_Lowest(), 0.3), (_Highest(), 0.7)])
    assert mix.act(game, state, None).tolist() == [0] * 3 + [8] * 7
    mix.parts[0] = (_Highest(), 0.3)  # a part's player can be set later (e.g. a new model)
    assert mix.act(game, state, None).tolist() == [8] * 10
    assert [(s.start, s.stop) for s in split_boards([0.5, 0.2, 0.15, 0.15], 100)] == [
        (0, 50), (50, 70), (70, 85), (85, 100)
    ]  # fmt: skip
    with pytest.raises(ValueError, match="non-negative"):
        MixedPlayer([(_Lowest(), -1.0)])
