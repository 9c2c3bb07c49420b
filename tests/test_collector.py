"""Self-play collection: credit assignment pinned down on a hand-built two-move game."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from rltransfer.games import make
from rltransfer.games.check import check_game
from rltransfer.games.core import Game, IllegalActionMode, State
from rltransfer.learn.advantage import gae
from rltransfer.learn.collector import GameCollector, SelfPlayConfig, board_slices
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape

CFG = NetConfig(channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8, groups=2)


@dataclasses.dataclass(frozen=True)
class DuelState(State):
    picks: Tensor  # [N, 2] int64: each player's pick, -1 before it is made


class Duel(Game):
    """Each player picks 0 or 1 once; player 0's reward is ``pick0 - pick1``.

    Picking 1 is better for both seats. Seated first, the learner's move is answered by
    the opponent's, which ends the game: its reward comes only through the reply. Seated
    second, the learner's own move ends it.
    """

    id = "duel"
    height, width = 1, 2
    num_planes = 2
    num_actions = 2
    max_moves = 2

    def __init__(self, *, illegal_action: IllegalActionMode = "lose") -> None:
        super().__init__(illegal_action=illegal_action)

    def _init(self, n: int, device: torch.device) -> DuelState:
        picks = torch.full((n, 2), -1, dtype=torch.int64, device=device)
        return DuelState(**self._base_fields(n, device), picks=picks)

    def _legal_mask(self, state: State) -> Tensor:
        return torch.ones(state.batch_size, 2, dtype=torch.bool, device=state.device)

    def _apply(self, state: State, action: Tensor) -> DuelState:
        assert isinstance(state, DuelState)
        mover = state.current_player
        picks = state.picks.scatter(1, mover[:, None], action[:, None])
        over = mover == 1
        return dataclasses.replace(
            state,
            picks=picks,
            current_player=1 - mover,
            terminated=over,
            reward=torch.where(over, (picks[:, 0] - picks[:, 1]).float(), 0.0),
        )

    def board(self, state: State) -> Tensor:
        assert isinstance(state, DuelState)
        # cell p holds player p's stone once it has picked (the pick itself stays hidden)
        owner = torch.arange(1, 3, device=state.device).expand_as(state.picks)
        return torch.where(state.picks >= 0, owner, 0).to(torch.int8).view(-1, 1, 2)


def _zero_value_net(game: Game, task: str) -> PolicyNet:
    torch.manual_seed(0)
    net = PolicyNet({task: TaskShape.of(game)}, CFG)
    for p in net.value_heads[task].fc2.parameters():
        p.data.zero_()  # V = tanh(0) = 0: advantages equal rewards
    return net


def test_duel_is_a_valid_game() -> None:
    check_game(Duel(), num_boards=16)


def test_credit_assignment_in_both_seats() -> None:
    game = Duel()
    net = _zero_value_net(game, "duel")
    gen = torch.Generator().manual_seed(0)
    mix = SelfPlayConfig(self=0, snapshot=0, random=1, greedy=0)
    col = GameCollector("duel", game, 64, 8, mix, torch.device("cpu"), gen)
    ro = col.collect(net, None)
    # every learner decision ends a game: either its own move or the opponent's reply does
    assert bool(ro.dones.all())
    # the learner's seat alternates game by game on every board, starting 0, 1, 0, 1, ...
    seat = (torch.arange(64) % 2)[None, :] ^ (torch.arange(8)[:, None] % 2)
    own_pick = ro.actions
    # a learner pick of 1 never loses, a pick of 0 never wins: whichever ply ended the game
    assert bool((ro.rewards[own_pick == 1] >= 0).all())
    assert bool((ro.rewards[own_pick == 0] <= 0).all())
    # seated first, the reward arrived through the opponent's reply: it is not always 0
    first = seat == 0
    assert bool((ro.rewards[first] != 0).any())
    # the observation shows the learner to move: its own pick is never on the board yet
    assert bool((ro.obs[:, :, 0].sum(dim=(2, 3)) == 0).all())
    # the opponent's pick is on the board exactly when the learner is seated second
    opp_seen = ro.obs[:, :, 1].sum(dim=(2, 3)) > 0
    assert torch.equal(opp_seen, ~first)
    adv, _ = gae(ro.rewards, ro.values, ro.dones, ro.next_value, 0.99, 0.95)
    # V = 0 and every step is terminal: the advantage is the reward, its sign the right one
    assert torch.allclose(adv, ro.rewards)
    assert bool((adv[own_pick == 1] >= 0).all()) and bool((adv[own_pick == 0] <= 0).all())
    assert float(adv[own_pick == 1].mean()) > 0.3 > -0.3 > float(adv[own_pick == 0].mean())


def test_next_observation_is_the_learners_own_next_turn() -> None:
    game = make("tic_tac_toe")
    net = _zero_value_net(game, "ttt")
    gen = torch.Generator().manual_seed(1)
    mix = SelfPlayConfig(self=0.5, snapshot=0, random=0.25, greedy=0.25)
    col = GameCollector("ttt", game, 32, 12, mix, torch.device("cpu"), gen)
    ro = col.collect(net, None)
    own = ro.obs[:, :, 0].sum(dim=(2, 3))
    opp = ro.obs[:, :, 1].sum(dim=(2, 3))
    going_on = ~ro.dones[:-1]
    # between two learner decisions of the same game: one own stone and one reply more
    assert torch.equal((own[1:] - own[:-1])[going_on], torch.ones_like(own[1:][going_on]))
    assert torch.equal((opp[1:] - opp[:-1])[going_on], torch.ones_like(opp[1:][going_on]))
    # after a game ends the learner sees a new game: empty, or the opponent's opening move
    after = torch.cat([torch.zeros(1, 32, dtype=torch.bool), ro.dones[:-1]])
    assert bool((own[after] == 0).all()) and bool((opp[after] <= 1).all())
    # masks stored with the rollout are the legal moves of the stored positions
    empty = (ro.obs[:, :, 0] + ro.obs[:, :, 1]).flatten(2) == 0
    assert torch.equal(ro.masks, empty)
    assert bool(ro.masks.gather(2, ro.actions[..., None]).all())


def test_stats_and_counters() -> None:
    game = Duel()
    net = _zero_value_net(game, "duel")
    gen = torch.Generator().manual_seed(0)
    mix = SelfPlayConfig(self=0, snapshot=0, random=1, greedy=0)
    col = GameCollector("duel", game, 10, 4, mix, torch.device("cpu"), gen)
    col.collect(net, None)
    stats = col.pop_stats()
    assert stats["random"]["episodes"] == 40  # every decision ends a game
    assert stats["random"]["wins"] + stats["random"]["draws"] + stats["random"]["losses"] == 40
    assert stats["random"]["length"] == 40  # one learner decision per game
    # both sides' plies: 40 two-ply games, plus the openings of the games now waiting for
    # the learner (boards where it plays second next)
    assert int(col.moves) == 80 + int((col.seat == 1).sum())
    assert col.pop_stats()["random"]["episodes"] == 0  # read once, then reset


def test_opponent_mix_split() -> None:
    mix = SelfPlayConfig(self=0.5, snapshot=0.2, random=0.15, greedy=0.15)
    split = board_slices(mix, 100)
    assert [split[k].stop - split[k].start for k in ("self", "snapshot", "random", "greedy")] == [
        50,
        20,
        15,
        15,
    ]
    assert split["greedy"].stop == 100


def test_opponent_mix_gives_the_perfect_share_to_greedy_where_no_perfect_player() -> None:
    mix = SelfPlayConfig(self=0.5, snapshot=0.1, random=0.1, greedy=0.1, perfect=0.2)
    sizes = {
        game_id: {k: s.stop - s.start for k, s in board_slices(mix, 100, make(game_id)).items()}
        for game_id in ("tic_tac_toe", "connect_four")
    }
    assert sizes["tic_tac_toe"] == dict(
        self=50, snapshot=10, random=10, greedy=10, perfect=20, mcts=0
    )
    assert sizes["connect_four"] == dict(
        self=50, snapshot=10, random=10, greedy=30, perfect=0, mcts=0
    )


def test_opponent_mix_gives_the_mcts_share_to_greedy_where_nothing_can_search() -> None:
    from rltransfer.games.outside import OutsideGame

    mix = SelfPlayConfig(self=0.5, snapshot=0, random=0, greedy=0.1, mcts=0.4)
    searched = board_slices(mix, 10, make("connect_four"))
    assert searched["mcts"] == slice(6, 10) and searched["greedy"] == slice(5, 6)
    forward_only = board_slices(mix, 10, OutsideGame("tictactoe_v3"))
    assert forward_only["mcts"] == slice(10, 10) and forward_only["greedy"] == slice(5, 10)


def test_mcts_opponent_in_the_mix_beats_a_random_learner() -> None:
    game = make("connect_four")
    net = _zero_value_net(game, "c4")  # near-uniform policy
    gen = torch.Generator().manual_seed(5)
    mix = SelfPlayConfig(self=0, snapshot=0, random=0, greedy=0, mcts=1, mcts_simulations=16)
    col = GameCollector("c4", game, 8, 24, mix, torch.device("cpu"), gen)
    assert col.scripted["mcts"].name == "mcts:16"
    col.collect(net, None)
    stats = col.pop_stats()["mcts"]
    assert stats["episodes"] >= 8
    assert stats["losses"] > 0.8 * stats["episodes"]  # random moves lose to 16 simulations


def test_perfect_opponent_never_loses_and_punishes_a_random_learner() -> None:
    game = make("tic_tac_toe")
    net = _zero_value_net(game, "ttt")  # near-uniform policy: it blunders often
    gen = torch.Generator().manual_seed(3)
    mix = SelfPlayConfig(self=0, snapshot=0, random=0, greedy=0, perfect=1)
    col = GameCollector("ttt", game, 64, 40, mix, torch.device("cpu"), gen)
    ro = col.collect(net, None)
    stats = col.pop_stats()["perfect"]
    assert stats["episodes"] > 200
    assert stats["wins"] == 0 and stats["losses"] > stats["episodes"] / 2
    assert bool((ro.rewards <= 0).all())
    # both seats are played, and the learner loses from both
    assert stats["episodes"] == stats["draws"] + stats["losses"]


def test_perfect_share_plays_greedy_in_games_without_a_perfect_player() -> None:
    game = make("connect_four")
    net = _zero_value_net(game, "c4")
    gen = torch.Generator().manual_seed(0)
    mix = SelfPlayConfig(self=0, snapshot=0, random=0, greedy=0, perfect=1)
    col = GameCollector("c4", game, 16, 30, mix, torch.device("cpu"), gen)
    col.collect(net, None)
    stats = col.pop_stats()
    assert stats["perfect"]["episodes"] == 0 and stats["greedy"]["episodes"] > 0
