"""An Elo ladder: a round robin between players on one game, rated by a Bradley-Terry fit.

Every pairing plays :func:`~rltransfer.play.evaluate.play_match` games from random
openings, each opening once from each seat (two deterministic players would otherwise
replay one game). The ratings are the maximum a posteriori fit of the Bradley-Terry model
``P(i beats j) = 1 / (1 + 10 ** ((elo_j - elo_i) / 400))``, a draw counting as half a win,
with a prior of ``prior_draws`` virtual draws added to every pairing that was played. The
prior is what keeps the fit finite: every player beats ``random`` in every game, and a plain
maximum-likelihood fit would push such a gap to infinity. Ratings are anchored (one named
player is 0), and their 95% intervals come from the curvature of the log posterior at the
fit (the Laplace approximation), relative to the anchor.

We wrote the fit here rather than take a library: ``choix`` fits regularised
Bradley-Terry models but gives no intervals, and Newton's method on at most a few dozen
players is twenty lines of NumPy.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rltransfer.errors import LadderFileError
from rltransfer.games.core import BoardGame
from rltransfer.play.evaluate import EvalResult, play_match
from rltransfer.play.players import Player, player_for, split_run
from rltransfer.runs.checkpoint import (
    CheckpointError,
    checkpoint_dir,
    load_meta,
    read_network,
    versions_in,
)
from rltransfer.runs.folder import RunLock, write_text_atomic
from rltransfer.runs.metrics import LADDER_DIR, RunLogger, ladder_tag

#: Elo points per natural-log unit of odds: 400 Elo is odds of 10 to 1.
ELO_PER_NAT = 400.0 / math.log(10.0)
_Z95 = 1.96


@dataclasses.dataclass(frozen=True)
class Rating:
    """One player's place on the ladder (``elo`` relative to the anchor, at 0)."""

    player: str
    elo: float
    ci_low: float
    ci_high: float
    games: int
    score: float  # (wins + draws / 2) / games over all its pairings


@dataclasses.dataclass(frozen=True)
class Ladder:
    """A fitted ladder: ratings best first, and the pairings it was fitted on."""

    game: str
    anchor: str
    prior_draws: float
    opening_plies: int
    ratings: list[Rating]
    pairings: list[EvalResult]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "game": self.game,
            "anchor": self.anchor,
            "prior_draws": self.prior_draws,
            "opening_plies": self.opening_plies,
            "ratings": [dataclasses.asdict(r) for r in self.ratings],
            "pairings": [r.to_dict() for r in self.pairings],
        }

    def rating(self, player: str) -> Rating:
        """The rating of ``player`` (a ``KeyError`` naming the players otherwise)."""
        for r in self.ratings:
            if r.player == player:
                return r
        raise KeyError(f"{player!r} is not on the ladder: {', '.join(self.players)}")

    @property
    def players(self) -> list[str]:
        return [r.player for r in self.ratings]


def pairing_seed(seed: int, a: str, b: str) -> int:
    """The seed of the pairing of players ``a`` and ``b`` (either order) in a ladder seeded
    ``seed``. Each pairing draws its openings and its players' random moves from its own
    generator, so it plays the same games whichever pairings were played before it: a
    resumed ladder plays what an uninterrupted one would have."""
    names = "\0".join(sorted((a, b))).encode()
    return (seed * 0x9E3779B1 + zlib.crc32(names)) % 2**63


def round_robin(
    game: BoardGame,
    players: Mapping[str, Player],
    games_per_pair: int,
    seed: int = 0,
    device: torch.device | str | None = None,
    *,
    opening_plies: int = 2,
    done: Sequence[EvalResult] = (),
    progress: Callable[[str], None] | None = None,
    on_result: Callable[[EvalResult], None] | None = None,
) -> list[EvalResult]:
    """Every pairing of ``players`` (by label), ``games_per_pair`` games each (even: half
    the openings from each seat), from the first-named player's side, each seeded by
    :func:`pairing_seed`. A pairing of ``done`` between two of ``players`` (in either
    order) with ``games_per_pair`` games is taken as played, not played again.
    ``progress(label)`` is called after each pairing played, ``on_result(result)`` with
    its result (to save it)."""
    if len(players) < 2:
        raise ValueError(f"a ladder needs at least two players, got {list(players)}")
    if games_per_pair < 2 or games_per_pair % 2:
        raise ValueError(
            f"games per pairing must be even and >= 2 (each opening from both seats), "
            f"got {games_per_pair}"
        )
    played = {frozenset((r.player, r.opponent)): r for r in done if r.games == games_per_pair}
    results = []
    for (a, pa), (b, pb) in itertools.combinations(players.items(), 2):
        if frozenset((a, b)) in played:
            results.append(played[frozenset((a, b))])
            continue
        gen = torch.Generator(device=device or "cpu").manual_seed(pairing_seed(seed, a, b))
        r = play_match(game, pa, pb, games_per_pair, gen, device, opening_plies=opening_plies)
        r = dataclasses.replace(r, player=a, opponent=b)
        results.append(r)
        if on_result is not None:
            on_result(r)
        if progress is not None:
            progress(f"{a} vs {b}: {r.score:.2f}")
    return results


# --------------------------------------------------------------------------- progress file
def ladder_settings(
    game: str, games_per_pair: int, opening_plies: int, seed: int, device: torch.device | str
) -> dict[str, Any]:
    """What a resumed ladder must share with the one that wrote the file: the game spec,
    the games per pairing, the opening plies, the seed and the device type (CPU and CUDA
    generators draw different numbers from one seed). The prior and the anchor only change
    the fit, so they may differ."""
    return {
        "game": game, "games_per_pair": games_per_pair, "opening_plies": opening_plies,
        "seed": seed, "device": torch.device(device).type,
    }  # fmt: skip


def save_progress(
    path: str | Path,
    settings: Mapping[str, Any],
    pairings: Sequence[EvalResult],
    ladder: Ladder | None = None,
) -> None:
    """Write the pairings played so far (``complete: false``), or with ``ladder`` the
    whole fitted ladder (``complete: true``), with the settings, to ``path`` as JSON in
    one atomic replace: an interrupted ladder loses at most the pairing it was playing."""
    if ladder is None:
        body = {**settings, "complete": False, "pairings": [r.to_dict() for r in pairings]}
    else:
        body = {**ladder.to_dict(), **settings, "complete": True}
    write_text_atomic(Path(path), json.dumps(body, indent=1) + "\n")


def refuse_to_overwrite_progress(path: str | Path | None) -> None:
    """A :class:`~rltransfer.errors.LadderFileError` when ``path`` holds an unfinished
    ladder (``"complete": false``): a new ladder would replace its pairings at its first
    one, so it must be resumed (``--resume``) or removed first. A finished ladder, or any
    other file, is replaced as asked."""
    if path is None or not Path(path).is_file():
        return
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return
    if isinstance(data, dict) and data.get("complete") is False:
        played = len(data.get("pairings") or [])
        raise LadderFileError(
            f"{path} holds an unfinished ladder ({played} pairings played): continue it "
            "with --resume, or remove the file to start over"
        )


def load_progress(
    path: str | Path, settings: Mapping[str, Any], game_id: str, players: Collection[str]
) -> list[EvalResult]:
    """The pairings a ladder's JSON holds (:func:`save_progress`), checked: a
    :class:`~rltransfer.errors.LadderFileError` when the file cannot be read, is not a
    ladder's, was written with other settings (``settings``: :func:`ladder_settings`) or
    holds a pairing that is not one of this ladder's (another game or length, a player not
    among ``players``, numbers that disagree with its counts). The file is data: read as
    JSON, nothing in it is run."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LadderFileError(
            f"{path}: no such file to resume (run without --resume first)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LadderFileError(f"{path}: not a readable ladder JSON ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("pairings"), list):
        raise LadderFileError(f"{path}: not a ladder's JSON (no list of pairings)")
    if not settings.keys() <= data.keys():
        missing = ", ".join(sorted(settings.keys() - data.keys()))
        raise LadderFileError(
            f"{path}: not a ladder that can be resumed (no {missing}: written by an older "
            "rltransfer, or not by `rltransfer ladder --json`)"
        )
    differ = [k for k, v in settings.items() if type(data[k]) is not type(v) or data[k] != v]
    if differ:
        said = ", ".join(f"{k} {data[k]!r} there, {settings[k]!r} here" for k in differ)
        raise LadderFileError(f"{path} was written by a ladder with other settings: {said}")
    try:
        results = [EvalResult.from_dict(r) for r in data["pairings"]]
    except ValueError as e:
        raise LadderFileError(f"{path}: {e}") from e
    for r in results:
        if r.player == r.opponent or r.games != settings["games_per_pair"] or r.game != game_id:
            raise LadderFileError(
                f"{path}: the pairing {r.player} vs {r.opponent} ({r.games} games of "
                f"{r.game}) is not one of this ladder's: two players, "
                f"{settings['games_per_pair']} games of {game_id}"
            )
    if len({frozenset((r.player, r.opponent)) for r in results}) != len(results):
        raise LadderFileError(f"{path}: a pairing is listed twice")
    strangers = sorted({n for r in results for n in (r.player, r.opponent)} - set(players))
    if strangers:
        raise LadderFileError(
            f"{path} has pairings of players not named here: {', '.join(strangers)}; "
            "name them too, or write this ladder to another --json"
        )
    return results


def fit_ratings(
    pairings: Sequence[EvalResult],
    anchor: str,
    *,
    prior_draws: float = 2.0,
    game: str | None = None,
    opening_plies: int = 0,
) -> Ladder:
    """Bradley-Terry ratings (Elo scale) of every player named in ``pairings``, anchored
    at ``anchor`` = 0, with ``prior_draws`` virtual draws per pairing (module docstring).

    Raises ``ValueError`` for an unknown anchor, a negative prior, or players that are not
    connected to the anchor by played games (their rating would be undefined).
    """
    names = sorted({r.player for r in pairings} | {r.opponent for r in pairings})
    if anchor not in names:
        raise ValueError(f"the anchor {anchor!r} played no game here; players: {', '.join(names)}")
    if not (math.isfinite(prior_draws) and prior_draws >= 0):
        raise ValueError(f"prior_draws must be a finite number >= 0, got {prior_draws}")
    index = {n: k for k, n in enumerate(names)}
    p = len(names)
    games = np.zeros((p, p))  # games[i, j]: games between i and j, prior included
    points = np.zeros((p, p))  # points[i, j]: i's score against j, prior included
    for r in pairings:
        i, j = index[r.player], index[r.opponent]
        won = r.wins + 0.5 * r.draws
        for x, y, s in ((i, j, won), (j, i, r.games - won)):
            games[x, y] += r.games + prior_draws
            points[x, y] += s + 0.5 * prior_draws
    if prior_draws == 0 and not _strongly_connected(points > 0):
        raise ValueError(
            "without a prior the fit diverges: some group of players never scored against "
            "the rest (e.g. a pairing won 100%); use prior_draws > 0"
        )
    free = [k for k in range(p) if k != index[anchor]]
    rating, cov = _newton(games, points, free)
    se = np.zeros(p)
    se[free] = np.sqrt(np.diag(cov))
    ratings = []
    for n, k in index.items():
        elo, half = ELO_PER_NAT * rating[k], ELO_PER_NAT * _Z95 * se[k]
        played = sum(r.games for r in pairings if n in (r.player, r.opponent))
        scored = sum(
            (r.wins + 0.5 * r.draws) if r.player == n else (r.losses + 0.5 * r.draws)
            for r in pairings
            if n in (r.player, r.opponent)
        )
        ratings.append(Rating(n, elo, elo - half, elo + half, played, scored / max(played, 1)))
    ratings.sort(key=lambda r: -r.elo)
    return Ladder(
        game=game or (pairings[0].game if pairings else ""),
        anchor=anchor,
        prior_draws=prior_draws,
        opening_plies=opening_plies,
        ratings=ratings,
        pairings=list(pairings),
    )


def _strongly_connected(edges: np.ndarray) -> bool:
    """Whether every player reaches every other along ``edges[i, j]`` (i scored against
    j): the condition for a finite maximum-likelihood Bradley-Terry fit (Zermelo, Ford)."""
    reach = edges | np.eye(len(edges), dtype=bool)
    for k in range(len(edges)):  # Warshall's transitive closure
        reach |= reach[:, k : k + 1] & reach[k : k + 1, :]
    return bool(reach.all())


def _newton(
    games: np.ndarray, points: np.ndarray, free: list[int], tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise the Bradley-Terry log posterior over the ``free`` ratings (natural units;
    the others stay 0). Returns the ratings and the covariance of the free ones (the
    inverse of the negative Hessian). The objective is concave; steps are halved until
    it does not decrease."""
    r = np.zeros(games.shape[0])

    def objective(x: np.ndarray) -> float:
        d = x[:, None] - x[None, :]
        return float(np.sum(points * -np.logaddexp(0.0, -d)))

    def curvature(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The gradient of the free ratings and their block of the negative Hessian (a
        weighted Laplacian)."""
        p = 1.0 / (1.0 + np.exp(-(x[:, None] - x[None, :])))
        w = games * p * (1.0 - p)
        hess = np.diag(w.sum(axis=1)) - w
        return (points - games * p).sum(axis=1)[free], hess[np.ix_(free, free)]

    for _ in range(100):
        grad, h = curvature(r)
        if np.linalg.matrix_rank(h) < len(free):
            raise ValueError(
                "some players are not connected to the anchor by played games: their "
                "ratings are undefined (add pairings between them)"
            )
        step = np.linalg.solve(h, grad)
        before, t = objective(r), 1.0
        while True:
            trial = r.copy()
            trial[free] += t * step
            if objective(trial) >= before - 1e-12 or t < 1e-6:
                break
            t /= 2
        r = trial
        if np.max(np.abs(t * step)) < tol:
            break
    return r, np.linalg.inv(curvature(r)[1])


def format_ladder(ladder: Ladder) -> str:
    """A plain-text table, best first: Elo, its 95% interval, games and overall score."""
    header = ("rank", "player", "Elo", "95% CI", "games", "score")
    rows = [header] + [
        (
            str(k + 1),
            r.player,
            f"{r.elo:+.0f}",
            "anchor" if r.player == ladder.anchor else f"[{r.ci_low:+.0f}, {r.ci_high:+.0f}]",
            str(r.games),
            f"{r.score:.3f}",
        )
        for k, r in enumerate(ladder.ratings)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------- a run's history
def checkpoint_players(run: str | Path) -> dict[str, str]:
    """``{"<run>@<iteration>": checkpoint}`` for every checkpoint kept in a run (the last
    few and the milestones, see ``train.milestone_interval``), oldest first. ``run`` may
    carry a player suffix (``RUN+argmax``, ``RUN+search:S``): every checkpoint plays so,
    and its label and name carry the suffix too."""
    folder, suffix = _run_and_suffix(run)
    found = versions_in(Path(folder) / "checkpoints")
    if not found:
        raise CheckpointError(f"{folder}: no checkpoints under {Path(folder) / 'checkpoints'}")
    name = Path(folder).name
    labels = [f"{name}@{load_meta(c).get('iteration', c.name)}{suffix}" for c in found]
    return {label: f"{c}{suffix}" for label, c in zip(labels, found, strict=True)}


def ladder_players(
    game: BoardGame,
    names: Sequence[str] | Mapping[str, str],
    device: torch.device | str = "cpu",
) -> dict[str, Player]:
    """The players of a ladder by label, each by :func:`~rltransfer.play.players.player_for`
    (names, runs, ``RUN+argmax``, ``RUN+search:S``), every one checked before a game is
    played; a ``{label: name}`` mapping labels them (checkpoints). Repeated labels are an
    error."""
    labels = dict(names) if isinstance(names, Mapping) else {n: n for n in names}
    if len(labels) != len(names):
        raise ValueError(f"a player is named twice: {list(names)}")
    return {label: player_for(name, game, device) for label, name in labels.items()}


def log_checkpoint_ratings(
    run: str | Path, ladder: Ladder, checkpoints: Mapping[str, str], task: str
) -> Path:
    """Write each checkpoint's rating at its global step to TensorBoard under
    ``<run>/ladder`` (tags ``ladder/<task>/elo|elo_low|elo_high``), holding the run's lock,
    so a training run still writing there is refused rather than raced. A player suffix
    on ``run`` (``+search:64``) joins the task's tag segment (``<task>_search:64``), so
    each way of playing keeps its own chart. Returns the folder written."""
    folder, suffix = _run_and_suffix(run)
    task += suffix.replace("+", "_")
    run = Path(folder)
    lock = RunLock(run).acquire()
    try:
        with RunLogger(run / LADDER_DIR) as logger:
            for label, ckpt in checkpoints.items():
                r = ladder.rating(label)
                step = int(load_meta(Path(split_run(ckpt)[0])).get("global_step", 0))
                values = {"elo": r.elo, "elo_low": r.ci_low, "elo_high": r.ci_high}
                logger.scalars(step, {ladder_tag(task, k): v for k, v in values.items()})
    finally:
        lock.release()
    return run / LADDER_DIR


def run_task(run: str | Path, game: BoardGame) -> str:
    """The task of ``run`` (a player suffix allowed) that plays ``game``: the name its
    ratings are logged under (read from the checkpoint's metadata, weights left alone)."""
    folder, _ = _run_and_suffix(run)
    return read_network(checkpoint_dir(folder)).find_task(game, folder)


def _run_and_suffix(run: str | Path) -> tuple[str, str]:
    """``("runs/x", "+search:64")`` from ``"runs/x+search:64"`` (the suffix may be empty)."""
    spec = str(run)
    folder, _ = split_run(spec)
    return folder, spec[len(folder) :]
