"""The batched MCTS engine on positions with a known answer: wins in one, forced blocks, a
tic-tac-toe fork and its defence against the minimax table; every node's statistics add
up from each side (terminal results at odd and even depth); a batch searches exactly as
its boards would alone; Othello's pass; forward-only games refused."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rltransfer.games import make
from rltransfer.games.connect_four import ConnectFour
from rltransfer.games.core import BoardGame, State
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape
from rltransfer.play.players import _perfect_table
from rltransfer.search import (
    UNPROVEN,
    NetworkEvaluator,
    RolloutEvaluator,
    SearchConfig,
    SearchResult,
    UnsearchableGameError,
    noise,
    search,
)
from rltransfer.search.evaluators import rollout
from rltransfer.search.gumbel import visit_schedule
from rltransfer.search.tree import Tree, new_tree, solve

ROLLOUTS = RolloutEvaluator()
SMALL_NET = NetConfig(
    channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8, groups=2
)


def scripted(game: BoardGame, actions: list[int], n: int = 1) -> State:
    """``n`` copies of the position after the cell ``actions``."""
    state = game.init(n)
    for a in actions:
        state = game.step(state, torch.full((n,), a, dtype=torch.int64))
    return state


def columns(game: ConnectFour, cols: list[int], n: int = 1) -> State:
    """``n`` copies of the Connect Four position after dropping stones in ``cols``."""
    state = game.init(n)
    for col in cols:
        state = game.step(state, game.column_to_action(state, torch.full((n,), col)))
    return state


def uct(simulations: int, **kw: object) -> SearchConfig:
    return SearchConfig(simulations=simulations, rule="uct", c=2.0, **kw)


def run(game: BoardGame, state: State, config: SearchConfig, seed: int = 0) -> SearchResult:
    return search(game, state, ROLLOUTS, config, torch.Generator().manual_seed(seed))


def network(game: BoardGame, seed: int = 0) -> NetworkEvaluator:
    torch.manual_seed(seed)
    net = PolicyNet({"t": TaskShape.of(game)}, SMALL_NET).eval()
    return NetworkEvaluator(net, "t")


# ------------------------------------------------------------------ known answers
@pytest.mark.parametrize("solve", [True, False])
def test_tic_tac_toe_win_in_one_is_found_and_proven(solve: bool) -> None:
    game = make("tic_tac_toe")
    # X: 0 1, O: 3 4 -> X to move wins at 2 (O threatens 5: winning beats blocking)
    result = run(game, scripted(game, [0, 3, 1, 4], n=8), uct(30, solve=solve))
    assert result.action.tolist() == [2] * 8
    assert bool((result.q[:, 2] == 1.0).all())  # every visit of the win is worth +1
    if solve:
        assert bool((result.proven[:, 2] == 1).all()) and bool((result.outcome == 1).all())


def test_tic_tac_toe_must_block() -> None:
    game = make("tic_tac_toe")
    # X: 0 8, O: 3 -> O to move must take the centre (X threatens 0-4-8)
    result = run(game, scripted(game, [0, 3, 8], n=8), uct(60))
    assert result.action.tolist() == [4] * 8


def test_connect_four_win_in_one_and_must_block() -> None:
    game = ConnectFour()
    win = columns(game, [0, 1, 0, 1, 0, 1], n=2)  # X: three in column 0, to move
    block = columns(game, [0, 1, 0, 1, 0], n=2)  # O to move: X threatens column 0
    result = run(game, State.cat([win, block]), uct(60))
    assert game.action_to_column(result.action).tolist() == [0] * 4
    # the block's alternatives lose at once: where proven, they are losses for the mover
    others = [int(game.column_to_action(block.index(0), torch.tensor([c]))) for c in range(1, 7)]
    proven = result.proven[2:, others]
    assert bool(((proven == -1) | (proven == UNPROVEN)).all()) and int((proven == -1).sum()) >= 6


@pytest.mark.parametrize(
    ("moves", "simulations"),
    [
        ([0, 1, 4, 8], 100),  # X to move forks (3 or 6: two threats at once) and wins
        ([0, 4, 8], 250),  # O to move must take an edge; a corner loses to a fork
    ],
)
def test_tic_tac_toe_search_finds_the_minimax_moves(moves: list[int], simulations: int) -> None:
    game = make("tic_tac_toe")
    state = scripted(game, moves, n=16)
    best = int(_perfect_table()[state.mover[0] * 512 + state.other[0]])
    result = run(game, state, uct(simulations), seed=1)  # 16 boards, 16 keys
    assert all(best >> a & 1 for a in result.action.tolist())


# ------------------------------------------------------------- statistics and signs
def node_depths(tree: Tree) -> Tensor:
    """[N, M] depth of every node below the root (by parent links; -1 for unused)."""
    n, m = tree.visits.shape
    ar = torch.arange(n)[:, None]
    depth = torch.zeros(n, m, dtype=torch.int64)
    node = torch.arange(m).expand(n, m).clone()
    for _ in range(m):
        up = tree.parent[ar, node]
        if not bool((up >= 0).any()):
            break
        depth += (up >= 0).to(torch.int64)
        node = torch.where(up >= 0, up, node)
    used = torch.arange(m) < tree.count[:, None]
    return torch.where(used, depth, -1)


def check_tree(game: BoardGame, root: State, result: SearchResult, simulations: int) -> Tensor:
    """Assert the statistics of every node add up; return the depths of terminal nodes.

    * Root: its children's visits sum to the simulations.
    * Every used, live node: visits = 1 (its own evaluation) + its children's visits, and
      value_sum = its evaluation - the children's value sums (their mover is the opponent).
    * Every terminal node: its proven result is the game's winner, read from the node's
      state, seen by the player to move there by *depth parity* from the root's mover.
    """
    tree = result.tree
    n, m = tree.visits.shape
    live = ~root.terminated
    assert bool((result.visits.sum(dim=1)[live] == simulations).all())
    depth = node_depths(tree)
    used = depth >= 0
    kids = tree.children.long()
    has = kids >= 0
    k = kids.clamp(min=0)
    child_visits = torch.where(has, tree.visits.gather(1, k.view(n, -1)).view_as(k), 0.0)
    child_values = torch.where(has, tree.value_sum.gather(1, k.view(n, -1)).view_as(k), 0.0)
    inner = used & ~tree.terminal
    assert torch.equal((1 + child_visits.sum(-1))[inner], tree.visits[inner])
    expected = tree.net_value - child_values.sum(-1)
    torch.testing.assert_close(tree.value_sum[inner], expected[inner], atol=1e-4, rtol=0)
    ends = used & tree.terminal
    winner = game.winner(tree.states).view(n, m)
    first = root.current_player[:, None]
    mover = torch.where(depth % 2 == 0, first, 1 - first)
    result_for_mover = torch.where(winner < 0, 0, torch.where(winner == mover, 1, -1))
    assert torch.equal(tree.outcome[ends].long(), result_for_mover[ends])
    assert torch.equal(tree.value_sum[ends], tree.visits[ends] * result_for_mover[ends])
    return depth[ends]


def test_statistics_add_up_and_terminal_results_have_the_right_sign_at_odd_and_even_depth() -> None:
    game = make("tic_tac_toe")
    state = scripted(game, [4, 0], n=2)  # seven empty cells: games end at depths 3..7
    result = run(game, state, uct(200))
    depths = check_tree(game, state, result, 200)
    assert bool((depths % 2 == 1).any()) and bool((depths % 2 == 0).any())


def test_a_lost_position_is_proven_lost_through_the_opponents_win_at_depth_two() -> None:
    game = make("tic_tac_toe")
    # X: 0 4 2, O: 5 8 -> O to move; X threatens 1 (0-1-2) and 6 (2-4-6), O has no win
    state = scripted(game, [0, 5, 4, 8, 2], n=2)
    legal = game.legal_mask(state)[0]
    result = run(game, state, uct(200))
    check_tree(game, state, result, 200)
    assert bool((result.outcome == -1).all())  # every reply loses at depth 2
    assert bool((result.proven[:, legal] == -1).all())
    assert bool((result.value < 0).all())


def test_the_solver_proves_wins_at_once_and_draws_or_losses_only_when_all_is_proven() -> None:
    game = make("tic_tac_toe")
    state = scripted(game, [0, 1, 2, 4, 3, 5], n=1)  # X to move; cells 6, 7, 8 empty
    tree = new_tree(game, state, 8, torch.zeros(1, dtype=torch.int64), with_logits=False)
    tree.children[0, 0, 6:9] = torch.tensor([1, 2, 3], dtype=torch.int32)
    tree.count[0] = 4
    root = torch.zeros(1, 1, dtype=torch.int64)

    def root_after(outcomes: list[int]) -> int:  # children's results for *their* movers
        tree.outcome[0, 1:4] = torch.tensor(outcomes, dtype=torch.int8)
        tree.outcome[0, 0] = UNPROVEN
        solve(tree, root)
        return int(tree.outcome[0, 0])

    assert root_after([0, UNPROVEN, UNPROVEN]) == UNPROVEN  # a draw proves nothing alone
    assert root_after([1, 1, UNPROVEN]) == UNPROVEN  # nor do losses
    assert root_after([1, 0, 1]) == 0  # all proven: the best is the draw
    assert root_after([1, 1, 1]) == -1  # every move loses
    assert root_after([UNPROVEN, -1, UNPROVEN]) == 1  # one move wins: proven at once


def random_positions(game: BoardGame, n: int, plies: int, seed: int) -> State:
    """``n`` boards after up to ``plies`` random plies each (some may be over)."""
    gen = torch.Generator().manual_seed(seed)
    state, depth = game.init(n), torch.randint(0, plies + 1, (n,), generator=gen)
    for ply in range(plies):
        state = game.step(state, game.random_action(state, gen), ~state.terminated & (depth > ply))
    return state


@pytest.mark.parametrize(
    ("game_id", "options", "plies"),
    [("tic_tac_toe", {}, 4), ("connect_four", {}, 24), ("hex", {"size": 5}, 16),
     ("othello", {"size": 6}, 28)],
)  # fmt: skip
def test_the_solver_proving_from_new_terminals_alone_proves_what_solving_every_path_does(
    game_id: str, options: dict[str, int], plies: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search solves only the boards whose simulation added a terminal node, each up
    to the first ancestor its proof leaves unchanged. After every simulation, solving every
    node of every path must change nothing more, and the whole search must equal one
    that solves every path every time."""
    from rltransfer.search import mcts

    game = make(game_id, **options)
    state = random_positions(game, 24, plies, seed=plies)
    incremental = mcts.solve
    checks: list[bool] = []
    proofs = []  # non-terminal nodes proven, after each simulation

    def checked(tree: Tree, path: Tensor, new_proof: Tensor | None = None) -> None:
        incremental(tree, path, new_proof)
        after = tree.outcome.clone()
        incremental(tree, path)  # every node on every path
        checks.append(torch.equal(after, tree.outcome))
        proofs.append(int(((after != UNPROVEN) & ~tree.terminal).sum()))

    fast = run(game, state, uct(150))  # the incremental solver alone
    monkeypatch.setattr(mcts, "solve", checked)
    run(game, state, uct(150))
    assert len(checks) == 150 and all(checks)
    monkeypatch.setattr(mcts, "solve", lambda tree, path, new_proof=None: incremental(tree, path))
    full = run(game, state, uct(150))
    assert torch.equal(fast.visits, full.visits) and torch.equal(fast.action, full.action)
    assert torch.equal(fast.outcome, full.outcome) and torch.equal(fast.proven, full.proven)
    assert proofs[-1] >= 24  # the searches did prove positions, not only find terminals


def test_a_finished_board_is_left_alone() -> None:
    game = make("tic_tac_toe")
    over = scripted(game, [0, 3, 1, 4, 2], n=1)  # X won
    live = scripted(game, [0, 3, 1, 4], n=1)
    result = run(game, State.cat([over, live]), uct(20))
    assert result.visits[0].sum() == 0 and int(result.action[1]) == 2


# --------------------------------------------------------- batched == one by one
def _same(batched: SearchResult, single: SearchResult, i: int, exact: bool) -> None:
    assert int(batched.action[i]) == int(single.action[0])
    assert torch.equal(batched.visits[i], single.visits[0])
    if exact:
        assert torch.equal(batched.q[i], single.q[0])
    else:
        torch.testing.assert_close(batched.q[i], single.q[0])


def test_rollout_search_of_a_batch_equals_each_board_searched_alone() -> None:
    game = ConnectFour()
    openings = [[3, 3, 2, 4], [0, 6, 1, 1, 5], [3, 3, 2, 4]]
    states = [columns(game, cols) for cols in openings]
    keys = torch.tensor([7, 7, 2**32 - 1])  # a shared key; the same board, another key
    batched = search(game, State.cat(states), ROLLOUTS, uct(30), keys=keys)
    assert not torch.equal(batched.visits[0], batched.visits[2])  # the key matters
    for i, state in enumerate(states):
        single = search(game, state, ROLLOUTS, uct(30), keys=keys[i : i + 1])
        _same(batched, single, i, exact=True)


def test_hex_rollouts_fill_the_board_and_a_batch_equals_each_board_searched_alone() -> None:
    game = make("hex", size=7)
    gen = torch.Generator().manual_seed(3)
    state = game.init(6)
    for _ in range(5):
        state = game.step(state, game.random_action(state, gen))
    keys = torch.arange(6) * 7919
    batched = search(game, state, ROLLOUTS, uct(40), keys=keys)
    for i in range(6):
        single = search(game, state.index(i), ROLLOUTS, uct(40), keys=keys[i : i + 1])
        _same(batched, single, i, exact=True)
    # a rollout is the fill of its board in the order the key draws
    order = noise.bits(noise.bits(keys, noise.ROLLOUT, 5)[:, None], torch.arange(49))
    assert torch.equal(rollout(game, state, keys, 5), game.fill_result(state, order))


@pytest.mark.parametrize("rule", ["puct", "gumbel"])
def test_network_search_of_a_batch_equals_each_board_searched_alone(rule: str) -> None:
    game = make("tic_tac_toe")
    evaluator = network(game)
    states = [scripted(game, moves) for moves in ([], [4], [0, 8], [1, 2, 3])]
    config = SearchConfig(simulations=24, rule=rule, c=1.5)
    keys = torch.arange(4) * 1000
    batched = search(game, State.cat(states), evaluator, config, keys=keys)
    for i, state in enumerate(states):
        single = search(game, state, evaluator, config, keys=keys[i : i + 1])
        _same(batched, single, i, exact=False)


# ------------------------------------------------------------------ network rules
def test_puct_and_gumbel_with_a_network_take_the_win_in_one() -> None:
    game = make("tic_tac_toe")
    state = scripted(game, [0, 3, 1, 4], n=4)
    evaluator = network(game)
    for rule in ("puct", "gumbel"):
        config = SearchConfig(simulations=16, rule=rule, solve=False)
        result = search(game, state, evaluator, config, torch.Generator().manual_seed(0))
        assert result.action.tolist() == [2] * 4, rule
        assert bool((result.visits.sum(dim=1) == 16).all())
        check_tree(game, state, result, 16)
        torch.testing.assert_close(result.policy.sum(dim=1), torch.ones(4))
        assert bool((result.policy[~game.legal_mask(state)] == 0).all())


def test_gumbel_improved_policy_puts_the_win_on_top_with_few_simulations() -> None:
    game = make("tic_tac_toe")
    state = scripted(game, [0, 3, 1, 4], n=4)
    config = SearchConfig(simulations=12, rule="gumbel", solve=False)
    result = search(game, state, network(game), config, torch.Generator().manual_seed(0))
    assert result.policy.argmax(dim=1).tolist() == [2] * 4


def test_sequential_halving_schedule() -> None:
    table = visit_schedule(16, 8, torch.device("cpu"))
    # 4 considered, 8 simulations: 2 phases; all four once, then the best two twice each
    assert table[4].tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert table[1].tolist() == list(range(8))  # one action: it gets every simulation
    long = visit_schedule(16, 100, torch.device("cpu"))[16]
    assert long[:16].tolist() == [0] * 16 and long[16:24].tolist() == [1] * 8


def test_dirichlet_noise_mixes_into_the_root_prior_of_legal_actions_only() -> None:
    game = make("tic_tac_toe")
    state = scripted(game, [4], n=3)
    evaluator = network(game)
    plain = SearchConfig(simulations=10, rule="puct")
    noisy = SearchConfig(simulations=10, rule="puct", dirichlet=(0.25, 0.3))
    priors = []
    for config in (plain, noisy):
        result = search(game, state, evaluator, config, torch.Generator().manual_seed(0))
        legal = result.tree.legal[:, 0]
        priors.append(torch.softmax(result.tree.logits[:, 0].masked_fill(~legal, -1e9), dim=1))
        assert bool((result.visits.sum(dim=1) == 10).all())
        assert bool((result.visits[:, 4] == 0).all())
    assert bool((priors[1][:, 4] == 0).all()) and not torch.allclose(priors[0], priors[1])
    torch.testing.assert_close(priors[1].sum(dim=1), torch.ones(3))


# --------------------------------------------------------------------- othello pass
def _forced_pass(game: BoardGame, plies_before: int) -> State:
    """A 6x6 Othello position ``plies_before`` plies before a forced pass (random play,
    seeded), so a search from it meets the pass inside its tree."""
    gen = torch.Generator().manual_seed(0)
    n = 64
    history = [game.init(n)]
    for _ in range(game.max_moves):
        history.append(game.step(history[-1], game.random_action(history[-1], gen)))
    for t, state in enumerate(history):
        only_pass = game.legal_mask(state)[:, : game.num_actions - 1].sum(dim=1) == 0
        found = (only_pass & ~state.terminated).nonzero()
        if len(found) and t >= plies_before:
            return history[t - plies_before].index(int(found[0, 0]))
    raise AssertionError("no forced pass in 64 random games")


def test_othello_pass_is_searched_as_a_ply() -> None:
    game = make("othello", size=6)
    pass_action = game.num_actions - 1
    at_pass = _forced_pass(game, 0)
    result = run(game, at_pass, uct(20))
    assert int(result.action[0]) == pass_action and int(result.visits[0, pass_action]) == 20
    before = _forced_pass(game, 2)
    result = run(game, before, uct(100))
    assert bool((result.tree.action == pass_action).any())  # passes inside the tree
    check_tree(game, before, result, 100)


# ---------------------------------------------------------------------- refusals
def test_forward_only_games_are_refused() -> None:
    game = make("pettingzoo:tictactoe_v3")
    state = game.init(1)
    with pytest.raises(UnsearchableGameError, match="forward-only"):
        search(game, state, ROLLOUTS, uct(5))


def test_config_checks() -> None:
    for bad in (0, 100_001, 1.5, True):
        with pytest.raises(ValueError, match="simulations"):
            SearchConfig(simulations=bad)
    with pytest.raises(ValueError, match="rule"):
        SearchConfig(simulations=5, rule="alphabeta")
    with pytest.raises(ValueError, match="dirichlet"):
        SearchConfig(simulations=5, rule="uct", dirichlet=(0.25, 0.3))
    assert UNPROVEN not in (-1, 0, 1)
