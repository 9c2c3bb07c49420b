"""The m,n,k-game: options, scripted boards, the line detector against a naive scan, and
random games played move for move against tic-tac-toe, Connect Four and Gomoku."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rltransfer.errors import GameOptionError
from rltransfer.games import available_games, make, parse_game_spec
from rltransfer.games.check import check_game
from rltransfer.games.core import Game, IllegalActionError
from rltransfer.games.mnk import MNK, MNKState, has_line, line_directions
from rltransfer.specs.config import load_suite


def play(game: MNK, moves: list[tuple[int, int]]) -> tuple[MNKState, list[MNKState]]:
    """Play cells ``(r, c)`` in turn on one board; returns the state and every state before."""
    state = game.init(1)
    history = [state]
    for r, c in moves:
        state = game.step(state, torch.tensor([r * game.n + c]))
        history.append(state)
    assert isinstance(state, MNKState)
    return state, history


def x_line(x_moves: list[tuple[int, int]], o_moves: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """X plays ``x_moves``, O answers from ``o_moves`` in between (X plays last)."""
    moves = [x_moves[0]]
    for o, x in zip(o_moves, x_moves[1:], strict=True):
        moves += [o, x]
    return moves


# ------------------------------------------------------------------------------ options
def test_options_shapes_and_planes() -> None:
    game = make("mnk", m=4, n=7, k=3)
    assert isinstance(game, MNK) and "mnk" in available_games()
    assert (game.height, game.width, game.num_actions, game.max_moves) == (4, 7, 28, 28)
    assert game.observe(game.init(2)).shape == (2, 2, 4, 7)
    assert game.planes == ("own", "opponent") and len(game.planes) == game.num_planes
    assert repr(game) == "MNK(m=4, n=7, k=3, gravity=False)"
    default = make("mnk")
    assert (default.height, default.width, default.k, default.gravity) == (9, 9, 5, False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"m": 3, "n": 4, "k": 5}, r"k=5 stones in a row cannot fit on a 3x4 board.*k <= .* = 4"),
        ({"m": 20}, r"option m=20 is not allowed; choose 3\.\.19"),
        ({"k": 2}, r"option k=2 is not allowed"),
        ({"gravity": "true"}, r"gravity='true' is not allowed \(expected a bool, got a str\)"),
        ({"gravity": 1}, r"expected a bool, got an int"),
        ({"m": 6.0}, r"expected an int, got a float"),
        ({"size": 9}, r"unknown option 'size'; valid options: gravity, k, m, n"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(GameOptionError, match=message):
        make("mnk", **options)


def test_the_constructor_checks_its_options_too() -> None:
    with pytest.raises(GameOptionError, match="cannot fit"):
        MNK(m=3, n=3, k=4)
    with pytest.raises(GameOptionError, match="m=2 is not allowed"):
        MNK(m=2)


def test_boolean_options_parse_from_spec_strings() -> None:
    assert parse_game_spec("mnk:m=6,n=7,k=4,gravity=true") == (
        "mnk",
        {"m": 6, "n": 7, "k": 4, "gravity": True},
    )
    for text, value in [("True", True), ("FALSE", False), ("false", False), ("yes", "yes")]:
        assert parse_game_spec(f"mnk:gravity={text}")[1] == {"gravity": value}
    game_id, options = parse_game_spec("mnk:m=6,n=7,k=4,gravity=TRUE")
    game = make(game_id, **options)
    assert isinstance(game, MNK) and game.gravity is True


def test_boolean_options_come_from_suite_files(tmp_path: Path) -> None:
    path = tmp_path / "lines.toml"
    path.write_text(
        'name = "lines"\n[[games]]\nid = "mnk"\noptions = { m = 6, n = 7, k = 4, gravity = true }\n'
    )
    (spec,) = load_suite(path).games
    game = spec.make()
    assert isinstance(game, MNK) and game.gravity is True
    assert spec.name == "mnk_gravityTrue_k4_m6_n7"


# ----------------------------------------------------------------------- scripted games
# A 5 x 6 board, four in a row; O's fillers on the bottom row never make four.
SHAPE = {"m": 5, "n": 6, "k": 4}
FILLER = [(4, 0), (4, 2), (4, 4)]
FOURS = {
    "across": ([(1, 1), (1, 2), (1, 4), (1, 3)], "......\n.XXXX.\n......\n......\nO.O.O."),
    "down": ([(0, 5), (1, 5), (3, 5), (2, 5)], ".....X\n.....X\n.....X\n.....X\nO.O.O."),
    "diagonal": ([(0, 2), (1, 3), (3, 5), (2, 4)], "..X...\n...X..\n....X.\n.....X\nO.O.O."),
    "anti_diagonal": ([(0, 4), (1, 3), (3, 1), (2, 2)], "....X.\n...X..\n..X...\n.X....\nO.O.O."),
}


@pytest.mark.parametrize("direction", sorted(FOURS))
def test_k_in_a_row_wins_in_every_direction(direction: str) -> None:
    game = MNK(**SHAPE)
    x_moves, board = FOURS[direction]
    state, history = play(game, x_line(x_moves, FILLER))
    assert game.render_text(state) == board
    assert state.terminated.tolist() == [True] and state.rewards.tolist() == [[1.0, -1.0]]
    assert not any(bool(s.terminated[0]) for s in history[:-1])


def test_player_1_wins_and_a_longer_line_counts() -> None:
    game = MNK(**SHAPE)
    # O fills the bottom row as X X . X X: the fifth stone makes a line of five
    x_moves = [(0, 0), (0, 2), (0, 4), (2, 0), (2, 2)]
    o_moves = [(4, 0), (4, 1), (4, 3), (4, 4), (4, 2)]
    state, history = play(game, [m for pair in zip(x_moves, o_moves, strict=True) for m in pair])
    assert game.render_text(state).splitlines()[-1] == "OOOOO."
    assert state.rewards.tolist() == [[-1.0, 1.0]] and game.winner(state).tolist() == [1]
    assert not any(bool(s.terminated[0]) for s in history[:-1])


@pytest.mark.parametrize(
    "x_moves",
    [
        [(1, 4), (1, 5), (2, 0), (2, 1)],  # four consecutive cells in row-major order
        [(0, 4), (1, 5), (4, 1), (3, 0)],  # cells 4, 11, 18, 25: a diagonal wrapping right
        [(0, 1), (1, 0), (2, 4), (1, 5)],  # cells 1, 6, 11, 16: an anti-diagonal wrapping left
    ],
)
def test_lines_do_not_wrap_between_rows(x_moves: list[tuple[int, int]]) -> None:
    game = MNK(**SHAPE)
    state, _ = play(game, x_line(x_moves, FILLER))
    assert state.terminated.tolist() == [False] and int(state.step_count[0]) == 7


def test_a_full_board_without_a_line_is_a_draw() -> None:
    game = MNK(3, 3, 3)
    cells = [0, 1, 2, 4, 3, 5, 7, 6, 8]
    state, history = play(game, [divmod(a, 3) for a in cells])
    assert game.render_text(state) == "XOX\nXOO\nOXX"
    assert state.terminated.tolist() == [True] and state.rewards.tolist() == [[0.0, 0.0]]
    assert game.winner(state).tolist() == [-1]
    assert not any(bool(s.terminated[0]) for s in history[:-1])


def test_gravity_legal_cells_are_the_landing_cells() -> None:
    game = MNK(4, 5, 3, gravity=True)
    state, _ = play(game, [(3, 2), (2, 2), (1, 2), (0, 2), (3, 0)])
    assert game.render_text(state) == "..O..\n..X..\n..O..\nX.X.."
    expected = torch.zeros(4, 5, dtype=torch.bool)
    expected[3, [1, 3, 4]] = True
    expected[2, 0] = True  # column 2 is full
    assert torch.equal(game.legal_mask(state)[0].view(4, 5), expected)
    strict = MNK(4, 5, 3, gravity=True, illegal_action="raise")
    with pytest.raises(IllegalActionError, match=r"action 1 is illegal.*legal actions there"):
        strict.step(state, torch.tensor([1]))  # a floating cell
    lost = game.step(state, torch.tensor([2]))  # the top of the full column
    assert lost.terminated.tolist() == [True] and lost.rewards.tolist() == [[1.0, -1.0]]


def test_gravity_connect_three_down_and_only_across_when_k_exceeds_the_height() -> None:
    game = MNK(4, 5, 3, gravity=True)
    state, _ = play(game, [(3, 1), (3, 0), (2, 1), (2, 0), (1, 1)])
    assert state.rewards.tolist() == [[1.0, -1.0]]
    tall_k = MNK(3, 6, 5, gravity=True)  # k > m: only horizontal lines fit
    assert tall_k._directions == ((0, 1),)
    state, _ = play(tall_k, [(2, 0), (1, 0), (2, 1), (1, 1), (2, 2), (1, 2), (2, 3), (1, 3)])
    assert state.terminated.tolist() == [False]
    state = tall_k.step(state, torch.tensor([2 * 6 + 4]))
    assert state.rewards.tolist() == [[1.0, -1.0]]


def test_observation_planes_are_own_then_opponent_for_either_viewer() -> None:
    game = MNK(3, 4, 3)
    state, _ = play(game, [(0, 0), (2, 3), (1, 1)])  # X X, O: O to move
    own_x = torch.zeros(3, 4)
    own_x[0, 0] = own_x[1, 1] = 1
    own_o = torch.zeros(3, 4)
    own_o[2, 3] = 1
    assert torch.equal(game.observe(state)[0], torch.stack([own_o, own_x]))
    assert torch.equal(game.observe(state, torch.tensor([0]))[0], torch.stack([own_x, own_o]))


@pytest.mark.parametrize(("shape", "gravity"), [((4, 7, 3), False), ((5, 6, 4), True)])
def test_random_moves_are_uniform_over_legal_cells_mid_game(
    shape: tuple[int, int, int], gravity: bool
) -> None:
    game = MNK(*shape, gravity=gravity)
    state, _ = play(game, [(shape[0] - 1, 1), (shape[0] - 1, 2), (shape[0] - 2, 1)])
    draws = 20_000
    many = state.map(lambda t: t.expand(draws, *t.shape[1:]).contiguous())
    gen = torch.Generator().manual_seed(3)
    counts = torch.bincount(game.random_action(many, gen), minlength=game.num_actions)
    legal = game.legal_mask(state)[0]
    assert (counts[~legal] == 0).all() and (counts[legal] > 0).all()
    expected = draws / int(legal.sum())
    assert float((counts[legal] - expected).abs().max()) < 6 * expected**0.5


# ------------------------------------------------------------------ the line detector
def naive_has_line(board: list[list[bool]], k: int) -> bool:
    """Independent reference: ``k`` stones in a row in some row, column or diagonal,
    each written out as a string."""
    rows, cols = len(board), len(board[0])

    def line(cells: list[tuple[int, int]]) -> str:
        return "".join("x" if board[r][c] else "." for r, c in cells)

    lines = [line([(r, c) for c in range(cols)]) for r in range(rows)]
    lines += [line([(r, c) for r in range(rows)]) for c in range(cols)]
    for d in range(-rows, rows + cols):
        lines.append(line([(r, r + d) for r in range(rows) if 0 <= r + d < cols]))
        lines.append(line([(r, d - r) for r in range(rows) if 0 <= d - r < cols]))
    return any("x" * k in text for text in lines)


@pytest.mark.parametrize(
    ("m", "n", "k", "density"),
    [(3, 3, 3, 0.5), (4, 7, 3, 0.4), (7, 4, 4, 0.55), (6, 7, 4, 0.5), (5, 5, 5, 0.75),
     (9, 9, 5, 0.55), (19, 19, 5, 0.4), (3, 19, 9, 0.8), (19, 3, 9, 0.8), (19, 19, 19, 0.8)],
)  # fmt: skip
def test_has_line_matches_a_naive_scan(m: int, n: int, k: int, density: float) -> None:
    gen = torch.Generator().manual_seed(m * 100 + n * 10 + k)
    cells = torch.rand(400, m, n, generator=gen) < density
    rows = (cells.to(torch.int32) << torch.arange(n, dtype=torch.int32)).sum(dim=2)
    found = has_line(rows.to(torch.int32), k, line_directions(m, n, k)).tolist()
    expected = [naive_has_line(board, k) for board in cells.tolist()]
    assert found == expected
    assert 0 < sum(expected) < len(expected)  # both answers occur


# ------------------------------------------------------------------------ conformance
@pytest.mark.parametrize(
    ("m", "n", "k", "gravity", "boards"),
    [(3, 3, 3, False, 64), (6, 7, 4, True, 64), (9, 9, 5, False, 32), (4, 7, 3, False, 64),
     (7, 4, 3, True, 64), (3, 6, 5, True, 32), (19, 19, 5, False, 8)],
)  # fmt: skip
def test_variants_pass_check_game(m: int, n: int, k: int, gravity: bool, boards: int) -> None:
    check_game(MNK(m, n, k, gravity), num_boards=boards)


# ------------------------------------------------------ move for move against our games
def assert_same_games(ours: MNK, theirs: Game, num_games: int, seed: int) -> list[int]:
    """Play the same random games on both: at every ply the legal masks, boards, both
    players' observations and the state fields must agree. Moves alternate between the
    two games' ``random_action``; one move in 50 is any cell, legal or not, so illegal
    moves must forfeit alike. Returns how many games ended won by 0, won by 1, drawn,
    forfeited."""
    assert (ours.height, ours.width, ours.num_actions) == (theirs.height, theirs.width,
                                                          theirs.num_actions)  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    a, b = ours.init(num_games), theirs.init(num_games)
    forfeits = torch.zeros(num_games, dtype=torch.bool)
    result = torch.zeros(num_games)  # player 0's reward at the ply each game ended
    for ply in range(ours.max_moves + 1):
        where = f"ply {ply}"
        assert torch.equal(ours.legal_mask(a), theirs.legal_mask(b)), where
        assert torch.equal(ours.board(a), theirs.board(b)), where
        for viewer in (a.current_player, 1 - a.current_player):
            assert torch.equal(ours.observe(a, viewer), theirs.observe(b, viewer)), where
        for field in ("current_player", "terminated", "reward", "step_count"):
            assert torch.equal(getattr(a, field), getattr(b, field)), f"{where}: {field}"
        if bool(a.terminated.all()):
            break
        drawer: Game = ours if ply % 2 == 0 else theirs
        action = drawer.random_action(a if drawer is ours else b, gen)
        anywhere = torch.rand(num_games, generator=gen) < 0.02
        any_cell = torch.randint(0, ours.num_actions, (num_games,), generator=gen)
        action = torch.where(anywhere, any_cell, action)
        illegal = ~ours.legal_mask(a).gather(1, action[:, None])[:, 0] & ~a.terminated
        forfeits |= illegal
        ended = ~a.terminated
        a, b = ours.step(a, action), theirs.step(b, action)
        result = torch.where(ended & a.terminated, a.reward, result)
    assert bool(a.terminated.all())
    winner = torch.where(result > 0, 0, torch.where(result < 0, 1, -1))
    played = ~forfeits
    return [
        int(((winner == 0) & played).sum()),
        int(((winner == 1) & played).sum()),
        int(((winner == -1) & played).sum()),
        int(forfeits.sum()),
    ]


def test_mnk_3_3_3_is_tic_tac_toe_move_for_move() -> None:
    wins0, wins1, draws, forfeits = assert_same_games(MNK(3, 3, 3), make("tic_tac_toe"), 2000, 0)
    assert min(wins0, wins1, draws, forfeits) > 20


def test_mnk_6_7_4_with_gravity_is_connect_four_move_for_move() -> None:
    ours = MNK(6, 7, 4, gravity=True)
    wins0, wins1, _, forfeits = assert_same_games(ours, make("connect_four"), 1000, 1)
    assert min(wins0, wins1, forfeits) > 20


def test_mnk_15_15_5_is_gomoku_move_for_move() -> None:
    wins0, wins1, _, forfeits = assert_same_games(MNK(15, 15, 5), make("gomoku", size=15), 200, 2)
    assert min(wins0, wins1, forfeits) > 5


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_many_more_games_move_for_move(seed: int) -> None:
    assert_same_games(MNK(3, 3, 3), make("tic_tac_toe"), 20_000, 10 + seed)
    assert_same_games(MNK(6, 7, 4, gravity=True), make("connect_four"), 10_000, 20 + seed)
    for size in (7, 9, 19):
        assert_same_games(MNK(size, size, 5), make("gomoku", size=size), 1000, 30 + seed)


@pytest.mark.parametrize("game_id", available_games())
def test_every_native_game_declares_what_its_planes_mean(game_id: str) -> None:
    """Each game's ``planes`` names its observation planes in order, and they mean that:
    "own" holds as many stones as the viewer has, "opponent" as many as the other player
    (counted, so Hex's transposed frame for player 1 reads the same), "black_to_move" is 1
    everywhere exactly when player 0 is to move."""
    game = make(game_id)
    expected = ("own", "opponent", "black_to_move") if game_id == "othello" else ("own", "opponent")
    assert game.planes == expected and len(game.planes) == game.num_planes
    gen = torch.Generator().manual_seed(0)
    state = game.init(16)
    for _ in range(3):
        state = game.step(state, game.random_action(state, gen))
    board = game.board(state).flatten(1)
    for viewer in (state.current_player, 1 - state.current_player):
        obs = game.observe(state, viewer).flatten(2)
        stones = {
            "own": (board == (viewer + 1)[:, None]).sum(dim=1),
            "opponent": (board == (2 - viewer)[:, None]).sum(dim=1),
        }
        for plane, name in enumerate(game.planes):
            if name == "black_to_move":
                to_move = (state.current_player == 0).float()[:, None]
                assert torch.equal(obs[:, plane], to_move.expand_as(obs[:, plane]))
            else:
                assert torch.equal(obs[:, plane].sum(dim=1).long(), stones[name]), name
