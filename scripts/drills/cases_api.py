"""Drill 4: bad input through the game API and its views (PettingZoo, gymnasium, SB3).

Each case is a small Python snippet run in its own interpreter. Unless noted, the boards
are tic-tac-toe: ``S1`` holds 2 boards with X on the centre (cell 4), O to move.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from harness import Case, Ctx, Outcome, api_checks, api_snippet

PRELUDE = """\
import numpy as np
import torch
from rltransfer.games import make

def summary(g, s, i=0):
    return {"term": s.terminated.tolist(), "rewards": s.rewards.tolist(),
            "board": g.render_text(s, i)}

TTT = make("tic_tac_toe")
S0 = TTT.init(2)
S1 = TTT.step(S0, torch.tensor([4, 4]))
SD = TTT.step(S1, torch.tensor([-1, -1]))  # both boards finished (O forfeits)
"""
AEC = "from rltransfer.views.pettingzoo import make_aec\nenv = make_aec('tic_tac_toe')\n"
GYM = (
    "import gymnasium\nimport rltransfer.views\n"
    "from rltransfer.views.gymnasium import BoardGameEnv, BoardGameVectorEnv\n"
)
ENV = GYM + "env = BoardGameEnv('tic_tac_toe', agent_seat=0)\nenv.reset(seed=0)\n"
VEC = GYM + "v = BoardGameVectorEnv('tic_tac_toe', 2, agent_seat=0)\nv.reset(seed=0)\n"
SB3 = "from rltransfer.interop.sb3 import BoardGameVecEnv\n"
SB3_ENV = SB3 + "e = BoardGameVecEnv('tic_tac_toe', 2, agent_seat=0)\ne.reset()\n"
CENTRE = "...\n.X.\n..."
BOTH_GAMES = (
    r"(tic_tac_toe|TicTacToe).*(connect_four|ConnectFour)"
    r"|(connect_four|ConnectFour).*(tic_tac_toe|TicTacToe)"
)


def forfeit_first(r: Any) -> bool:
    """Board 0 (O to move) forfeited: X gets +1, board unchanged; board 1 plays on."""
    return r["term"] == [True, False] and r["rewards"][0] == [1.0, -1.0] and r["board"] == CENTRE


def finished_unchanged(r: Any) -> bool:
    return r["term"] == [True, True] and r["rewards"] == [[0.0, 0.0], [0.0, 0.0]]


def aec_result(winner: str) -> Callable[[Any], bool]:
    loser = "player_1" if winner == "player_0" else "player_0"
    return lambda r: r[1] == {winner: 1.0, loser: -1.0} and all(r[2].values())


def equals(value: Any) -> Callable[[Any], bool]:
    return lambda r: r == value


@dataclasses.dataclass
class Api:
    id: str
    api: str  # which API, as the drill write-up groups them
    what: str  # the input
    body: str  # sets ``result`` (after PRELUDE)
    ok: Callable[[Any], bool] | None = None  # a result is fine if this holds
    raises: tuple[str, ...] = ()  # exception types that are fine
    mention: str | None = None  # a regex the exception's message should match
    poor: tuple[str, ...] = ()  # exception types that reject, but cryptically (PARTIAL)
    expected: str = ""

    def case(self) -> Case:
        return Case(self.id, f"{self.api}: {self.what}", self.expected or self.describe(),
                    self.run)  # fmt: skip

    def describe(self) -> str:
        parts = []
        if self.ok is not None:
            parts.append("works as documented")
        if self.raises:
            parts.append(" or ".join(self.raises))
        text = ", or ".join(parts)
        return text + (f" naming /{self.mention}/" if self.mention else "")

    def run(self, ctx: Ctx) -> Outcome:
        r = ctx.python(api_snippet(PRELUDE + self.body))
        return api_checks(
            r, ok=self.ok, raises=self.raises, mention=self.mention, poor=self.poor
        ).outcome()


def step(actions: str, where: str = "") -> str:
    extra = f", where={where}" if where else ""
    return f"result = summary(TTT, TTT.step(S1, {actions}{extra}))"


B = "batched API, tic_tac_toe (illegal_action='lose')"
R = "raise mode"
OG = "other games / options"
P = "PettingZoo AEC view"
G = "gymnasium single-board view"
V = "gymnasium vector view"
S = "SB3 VecEnv view"
LOSE = "the mover forfeits board 0 (X +1), board unchanged, input untouched"
RAISE = "make('tic_tac_toe', illegal_action='raise')"
TABLE = [
    Api("4.1", B, "illegal: occupied cell", step("torch.tensor([4, 0])"), forfeit_first,
        expected=LOSE),
    Api("4.2", B, "out of range -1", step("torch.tensor([-1, 0])"), forfeit_first, expected=LOSE),
    Api("4.3", B, "out of range 10**6", step("torch.tensor([10**6, 0])"), forfeit_first,
        expected=LOSE),
    Api("4.4", B, "int64 max", step("torch.tensor([2**63 - 1, 0])"), forfeit_first, expected=LOSE),
    Api("4.5", B, "int64 min", step("torch.tensor([-2**63, 0])"), forfeit_first, expected=LOSE),
    Api("4.6", B, "uint8 action 255", step("torch.tensor([255, 0], dtype=torch.uint8)"),
        forfeit_first, expected=LOSE),
    Api("4.7", B, "int8 action -1", step("torch.tensor([-1, 0], dtype=torch.int8)"),
        forfeit_first, expected=LOSE),
    Api("4.8", B, "float actions", step("torch.tensor([4.0, 0.0])"), raises=("TypeError",),
        mention="integer"),
    Api("4.9", B, "bool actions", step("torch.tensor([True, False])"), raises=("TypeError",)),
    Api("4.10", B, "shape [N,1]", step("torch.tensor([[4], [0]])"), raises=("ValueError",),
        mention="shape"),
    Api("4.11", B, "shape [N+1]", step("torch.tensor([4, 0, 1])"), raises=("ValueError",),
        mention="shape"),
    Api("4.12", B, "0-d tensor", step("torch.tensor(4)"), raises=("ValueError",), mention="shape"),
    Api("4.13", B, "python list", step("[4, 0]"), forfeit_first, ("TypeError",),
        poor=("AttributeError",), expected="converted (as a tensor) or a clear TypeError"),
    Api("4.14", B, "numpy array", step("np.array([4, 0])"), forfeit_first, ("TypeError",),
        poor=("AttributeError",), expected="converted (as a tensor) or a clear TypeError"),
    Api("4.15", B, "complex dtype", step("torch.tensor([4 + 0j, 0 + 0j])"),
        raises=("TypeError", "ValueError"), expected="rejected (TypeError / ValueError)"),
    Api("4.16", B, "non-contiguous actions",
        "a = torch.tensor([[1, 9], [0, 9]])[:, 0]\n"
        "result = summary(TTT, TTT.step(S1, a)) == summary(TTT, TTT.step(S1, a.contiguous()))",
        equals(True), expected="the same as contiguous actions"),
    Api("4.17", B, "where= float mask",
        step("torch.tensor([1, 0])", "torch.tensor([1.0, 0.0])"),
        lambda r: r["term"] == [False, False] and r["board"] == ".O.\n.X.\n...",
        ("TypeError", "ValueError"), expected="board 0 moves only, or a clear error"),
    Api("4.18", B, "where= wrong shape", step("torch.tensor([1, 0])", "torch.tensor([True])"),
        raises=("ValueError",), expected="ValueError (not broadcast)"),
    Api("4.19", B, "step a finished board (legal cell)",
        "result = summary(TTT, TTT.step(SD, torch.tensor([0, 0])))", finished_unchanged,
        expected="unchanged, zero rewards"),
    Api("4.20", B, "step a finished board (illegal -1)",
        "result = summary(TTT, TTT.step(SD, torch.tensor([-1, -1])))", finished_unchanged,
        expected="unchanged, zero rewards"),
    Api("4.21", B, "legal mask of finished board", "result = TTT.legal_mask(SD).tolist()",
        equals([[True] * 9] * 2), expected="all True"),
    Api("4.22", B, "input state untouched after illegal step",
        "TTT.step(S1, torch.tensor([4, 4]))\n"
        "result = [TTT.render_text(S1, 0), S1.terminated.tolist()]",
        equals([CENTRE, [False, False]]), expected="S1 unchanged"),
    Api("4.23", R, "raise: occupied",
        f"g = {RAISE}\ns = g.step(g.init(1), torch.tensor([4]))\n"
        "result = summary(g, g.step(s, torch.tensor([4])))",
        raises=("IllegalActionError",), mention="legal"),
    Api("4.24", R, "raise: -1",
        f"g = {RAISE}\ns = g.step(g.init(1), torch.tensor([4]))\n"
        "result = summary(g, g.step(s, torch.tensor([-1])))",
        raises=("IllegalActionError",), mention="legal"),
    Api("4.25", R, "raise: 10**6",
        f"g = {RAISE}\ns = g.step(g.init(1), torch.tensor([4]))\n"
        "result = summary(g, g.step(s, torch.tensor([10**6])))",
        raises=("IllegalActionError",), mention="legal"),
    Api("4.26", R, "raise: step finished board",
        f"g = {RAISE}\ns = g.init(2)\n"
        "for a in (0, 3, 1, 4, 2):\n    s = g.step(s, torch.tensor([a, a]))\n"
        "result = summary(g, g.step(s, torch.tensor([5, 5])))",
        finished_unchanged, expected="no error; unchanged, zero rewards"),
    Api("4.27", OG, "make('nosuch')", "result = repr(make('nosuch'))",
        raises=("KeyError", "ValueError"), mention="available"),
    Api("4.28", OG, "make othello size=3", "result = repr(make('othello', size=3))",
        raises=("ValueError",), mention=r"6, 8|choose"),
    Api("4.29", OG, "make othello size=6.0", "result = repr(make('othello', size=6.0))",
        raises=("ValueError",), mention=r"6, 8|choose|allowed"),
    Api("4.30", OG, "make hex size=7.0 init",
        "result = make('hex', size=7.0).init(1).terminated.tolist()",
        raises=("ValueError",), mention=r"5\.\.13|choose|allowed"),
    Api("4.31", OG, "make gomoku size=np.int64(9)",
        "result = make('gomoku', size=np.int64(9)).init(1).terminated.tolist()",
        equals([False]), expected="works"),
    Api("4.32", OG, "make hex size=-1", "result = repr(make('hex', size=-1))",
        raises=("ValueError",), mention="5..13|choose"),
    Api("4.33", OG, "make gomoku size=1000", "result = repr(make('gomoku', size=1000))",
        raises=("ValueError",), mention="7..19|choose"),
    Api("4.34", OG, "make hex size='7'", "result = repr(make('hex', size='7'))",
        raises=("ValueError",), mention="choose|allowed"),
    Api("4.35", OG, "make hex size=True", "result = repr(make('hex', size=True))",
        raises=("ValueError",), mention="choose|allowed"),
    Api("4.36", OG, "make tic_tac_toe size=3", "result = repr(make('tic_tac_toe', size=3))",
        raises=("ValueError",), mention="option"),
    Api("4.37", OG, "make illegal_action='ignore'",
        "result = repr(make('tic_tac_toe', illegal_action='ignore'))",
        raises=("ValueError",), mention="lose|raise"),
    Api("4.38", OG, "init(0)", "result = TTT.init(0).terminated.tolist()", raises=("ValueError",),
        mention=">= 1"),
    Api("4.39", OG, "init(-5)", "result = TTT.init(-5).terminated.tolist()",
        raises=("ValueError",), mention=">= 1"),
    Api("4.40", OG, "init(2.5)", "result = TTT.init(2.5).terminated.tolist()",
        raises=("TypeError", "ValueError"), mention=r"^(?!.*zeros\(\)).*(board|integer)",
        expected="a clear error about the number of boards (not torch's)"),
    Api("4.41", OG, "step with another game's state",
        "C4 = make('connect_four')\n"
        "result = summary(TTT, TTT.step(C4.init(2), torch.tensor([0, 0])))",
        raises=("TypeError",), mention=BOTH_GAMES, poor=("AssertionError",),
        expected="TypeError naming both games"),
    Api("4.42", OG, "observe with another game's state",
        "C4 = make('connect_four')\nresult = TTT.observe(C4.init(2)).shape",
        raises=("TypeError",), mention=BOTH_GAMES, poor=("AssertionError",),
        expected="TypeError naming both games"),
    Api("4.43", OG, "othello pass when not allowed",
        "g = make('othello', size=6)\n"
        "result = g.step(g.init(1), torch.tensor([g.num_actions - 1])).rewards.tolist()",
        equals([[-1.0, 1.0]]), expected="the mover forfeits"),
    Api("4.44", OG, "connect_four illegal: cell not at bottom (0)",
        "g = make('connect_four')\nresult = g.step(g.init(1), torch.tensor([0])).rewards.tolist()",
        equals([[-1.0, 1.0]]), expected="the mover forfeits"),
    Api("4.45", OG, "hex out of range -1",
        "g = make('hex')\nresult = g.step(g.init(1), torch.tensor([-1])).rewards.tolist()",
        equals([[-1.0, 1.0]]), expected="the mover forfeits"),
    Api("4.46", P, "illegal (same cell twice)",
        AEC + "env.reset(seed=0)\nenv.step(4)\nenv.step(4)\n"
        "result = [env.agent_selection, env.rewards, env.terminations]",
        aec_result("player_0"), expected="player_1 forfeits; both terminated"),
    Api("4.47", P, "action -1",
        AEC + "env.reset(seed=0)\nenv.step(-1)\n"
        "result = [env.agent_selection, env.rewards, env.terminations]",
        aec_result("player_1"), expected="player_0 forfeits; both terminated"),
    Api("4.48", P, "action 10**6",
        AEC + "env.reset(seed=0)\nenv.step(10**6)\n"
        "result = [env.agent_selection, env.rewards, env.terminations]",
        aec_result("player_1"), expected="player_0 forfeits; both terminated"),
    Api("4.49", P, "action 2.7 (float)", AEC + "env.reset(seed=0)\nresult = env.step(2.7)",
        raises=("TypeError",)),
    Api("4.50", P, "action '3' (str)", AEC + "env.reset(seed=0)\nresult = env.step('3')",
        raises=("TypeError",)),
    Api("4.51", P, "action np.int64(3)",
        AEC + "env.reset(seed=0)\nenv.step(np.int64(3))\n"
        "result = [env.agent_selection, env.rewards, env.terminations]",
        lambda r: r[0] == "player_1" and not any(r[2].values()), expected="a normal move"),
    Api("4.52", P, "action np.array([3])",
        AEC + "env.reset(seed=0)\nresult = env.step(np.array([3]))",
        raises=("TypeError", "ValueError")),
    Api("4.53", P, "action None while alive", AEC + "env.reset(seed=0)\nresult = env.step(None)",
        raises=("ValueError",), mention="None"),
    Api("4.54", P, "raise mode: illegal",
        "from rltransfer.views.pettingzoo import make_aec\n"
        "env = make_aec('tic_tac_toe', illegal_action='raise')\n"
        "env.reset(seed=0)\nenv.step(4)\nresult = env.step(4)",
        raises=("IllegalActionError",), mention="legal"),
    Api("4.55", P, "AEC: step(0) after the game ended (3 tries)",
        AEC + "env.reset(seed=0)\nenv.step(-1)\nresult = []\nfor _ in range(3):\n"
        "    try:\n        env.step(0)\n        result.append('no error')\n"
        "    except Exception as e:\n        result.append(type(e).__name__)",
        equals(["ValueError"] * 3), expected="ValueError each time (dead agents step None)"),
    Api("4.56", P, "AEC: step before reset", AEC + "result = env.step(0)",
        raises=("RuntimeError",), mention="reset"),
    Api("4.57", G, "illegal (occupied)",
        ENV + "env.step(4)\nresult = list(env.step(4)[1:4])", equals([-1.0, True, False]),
        expected="reward -1, terminated"),
    Api("4.58", G, "action -1", ENV + "result = list(env.step(-1)[1:4])",
        equals([-1.0, True, False]), expected="reward -1, terminated"),
    Api("4.59", G, "action 10**6", ENV + "result = list(env.step(10**6)[1:4])",
        equals([-1.0, True, False]), expected="reward -1, terminated"),
    Api("4.60", G, "action 2.7", ENV + "result = env.step(2.7)[1]", raises=("TypeError",)),
    Api("4.61", G, "action '3'", ENV + "result = env.step('3')[1]", raises=("TypeError",)),
    Api("4.62", G, "action np.array([3])", ENV + "result = env.step(np.array([3]))[1]",
        raises=("TypeError", "ValueError")),
    Api("4.63", G, "action None", ENV + "result = env.step(None)[1]", raises=("TypeError",)),
    Api("4.64", G, "step after termination", ENV + "env.step(-1)\nresult = env.step(0)[1]",
        raises=("RuntimeError",), mention="reset"),
    Api("4.65", G, "raise mode illegal",
        GYM + "env = BoardGameEnv('tic_tac_toe', agent_seat=0, illegal_action='raise')\n"
        "env.reset(seed=0)\nresult = env.step(-1)[1]",
        raises=("IllegalActionError",), mention="legal"),
    Api("4.66", G, "gym.make unknown id",
        GYM + "result = repr(gymnasium.make('rltransfer/NoSuch-v0'))",
        raises=("Exception",), mention="NoSuch", expected="an error naming the id"),
    Api("4.67", G, "gym.make Othello size=3",
        GYM + "result = repr(gymnasium.make('rltransfer/Othello-v0', size=3))",
        raises=("ValueError",), mention=r"6, 8|choose"),
    Api("4.68", G, "gym.make bad opponent",
        GYM + "result = repr(gymnasium.make('rltransfer/TicTacToe-v0', opponent='nobody'))",
        raises=("ValueError",), mention="random|greedy"),
    Api("4.69", V, "vector illegal -1/10**6",
        VEC + "_, r, te, tr, _ = v.step(torch.tensor([-1, 10**6]))\n"
        "result = [r.tolist(), te.tolist(), tr.tolist()]",
        equals([[-1.0, -1.0], [True, True], [False, False]]), expected="both forfeit"),
    Api("4.70", V, "vector float actions", VEC + "result = repr(v.step(torch.tensor([0.0, 1.0])))",
        raises=("TypeError",)),
    Api("4.71", V, "vector numpy actions (vs torch, same seed)",
        VEC + "w = BoardGameVectorEnv('tic_tac_toe', 2, agent_seat=0)\nw.reset(seed=0)\n"
        "a = [x.tolist() for x in v.step(torch.tensor([-1, 4]))[1:3]]\n"
        "b = [x.tolist() for x in w.step(np.array([-1, 4]))[1:3]]\n"
        "result = [a == b, b]",
        lambda r: r[0] is True and r[1][0][0] == -1.0, ("TypeError",),
        expected="the same as torch actions"),
    Api("4.72", V, "vector wrong length", VEC + "result = repr(v.step(torch.tensor([0, 1, 2])))",
        raises=("ValueError",), mention="shape|2"),
    Api("4.73", V, "vector step after end (autoreset)",
        VEC + "v.step(torch.tensor([-1, -1]))\n"
        "_, r, te, tr, _ = v.step(torch.tensor([0, 0]))\n"
        "result = [r.tolist(), te.tolist(), tr.tolist()]",
        lambda r: r[1] == [False, False], expected="fresh games (SAME_STEP autoreset)"),
    Api("4.74", V, "make_vec num_envs=0",
        GYM + "result = repr(gymnasium.make_vec('rltransfer/TicTacToe-v0', num_envs=0))",
        raises=("ValueError",), mention=">= 1"),
    Api("4.75", S, "sb3 illegal -1/10**6",
        SB3_ENV + "e.step_async(np.array([-1, 10**6]))\n_, rew, done, _ = e.step_wait()\n"
        "result = [rew.tolist(), done.tolist()]",
        equals([[-1.0, -1.0], [True, True]]), expected="both forfeit"),
    Api("4.76", S, "sb3 float actions",
        SB3_ENV + "e.step_async(np.array([0.0, 1.0]))\nresult = repr(e.step_wait())",
        raises=("TypeError",)),
    Api("4.77", S, "sb3 wrong length",
        SB3_ENV + "e.step_async(np.array([0, 1, 2]))\nresult = repr(e.step_wait())",
        raises=("ValueError",), mention="2"),
    Api("4.78", S, "sb3 num_envs=0", SB3 + "result = repr(BoardGameVecEnv('tic_tac_toe', 0))",
        raises=("ValueError",), mention=">= 1"),
    Api("4.79", S, "sb3 opponent=path to nonexistent run",
        SB3 + "result = repr(BoardGameVecEnv('tic_tac_toe', 2, opponent='runs/nope'))",
        raises=("ValueError",), mention="runs/nope|checkpoint"),
]  # fmt: skip

CASES = [a.case() for a in TABLE]
