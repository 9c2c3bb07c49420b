"""Stable-Baselines3 interop: rltransfer games as an SB3 ``VecEnv``, trained trunks as SB3
feature extractors, and SB3 models as rltransfer players.

* :class:`BoardGameVecEnv`: N boards of any game against an opponent, as SB3's own
  ``VecEnv``. The boards step as one torch batch (it drives a
  :class:`~rltransfer.views.gymnasium.BoardGameVectorEnv`, so the agent-versus-opponent
  rules are the gymnasium view's, unchanged); NumPy appears only at the boundary, where SB3
  expects it. Works with ``PPO``, ``A2C``, ``DQN`` and sb3-contrib's ``MaskablePPO``.
* :class:`PretrainedTrunk`: the stem and shared trunk of an rltransfer run as an SB3
  ``BaseFeaturesExtractor`` (frozen or fine-tuned), so SB3 algorithms can start from it.
* :class:`SB3Player`: an SB3 model as an rltransfer :class:`~rltransfer.play.players.Player`,
  for :func:`rltransfer.play.evaluate.play_match` (or as a training opponent).

**Observations** are ``Box(0, 1, [C, H, W], float32)`` planes, channels first. SB3 treats a
3-D Box as an image only when its dtype is ``uint8`` with bounds ``[0, 255]``
(``stable_baselines3.common.preprocessing.is_image_space``), so these planes are *not*
images to SB3: they are never divided by 255 and never transposed by ``VecTransposeImage``,
whatever ``normalize_images`` says. ``MlpPolicy`` (flattened planes) therefore works with
SB3's defaults. ``CnnPolicy`` with its default ``NatureCNN`` does not: NatureCNN asserts an
image space (``normalize_images=False`` switches that check off) and its 8x8 stride-4 first
layer needs boards of at least 36x36 cells; use ``PretrainedTrunk`` (or another extractor
for small boards) with either policy name instead. ``normalize_images=False`` is harmless
with float planes and may be passed for clarity.

**Action masks.** sb3-contrib's ``MaskablePPO`` finds masks on a ``VecEnv`` with
``env.has_attr("action_masks")`` (which calls ``get_attr``) and reads them with
``np.stack(env.env_method("action_masks"))``: one ``[A]`` bool array per board.
:meth:`BoardGameVecEnv.env_method` gives exactly that, from one batched ``legal_mask`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn
from torch import Tensor, nn

from rltransfer.errors import UnknownTaskError
from rltransfer.games.core import BoardGame, State
from rltransfer.net.policy import NetConfig, Stem, Trunk, masked_logits, sample_logits
from rltransfer.runs.checkpoint import (
    AmbiguousTaskError,
    CheckpointError,
    checkpoint_dir,
    load_into,
    load_weights,
    read_network,
)
from rltransfer.views._common import build_game, render_board
from rltransfer.views.gymnasium import BoardGameVectorEnv, OpponentLike, Seat

#: What can stand in the opponent's seat: a player name (``"random"``, ``"greedy"``, ...),
#: the path of a trained run (its policy for this game plays), a ``Player``, or a function
#: ``opponent(game, state, generator) -> [N] actions``. ``None`` means ``"random"``. The
#: vector env resolves it (``rltransfer.play.players.player_for`` for names and paths).
OpponentSpec = OpponentLike


# ------------------------------------------------------------------------------ VecEnv
class BoardGameVecEnv(VecEnv):
    """N boards of one game against an opponent, as a Stable-Baselines3 ``VecEnv``.

    The rules (seats, the opponent's replies, rewards from the agent's seat, illegal
    moves) are those of :mod:`rltransfer.views.gymnasium`; this class only translates
    between its torch tensors and SB3's conventions:

    * ``step`` returns NumPy ``obs [N, C, H, W] float32``, ``rewards [N] float32``,
      ``dones [N] bool`` and a list of N info dicts.
    * A finished board is reset in the same step (SB3's VecEnv contract, as in
      ``DummyVecEnv``): ``obs[i]`` is already the next game (after the opponent's opening
      move if the agent now has seat 1), ``infos[i]["terminal_observation"]`` is the last
      position of the finished game (present exactly on the boards that finished), and
      ``infos[i]["TimeLimit.truncated"]`` is always ``False`` (games end by their rules).
    * ``infos[i]["agent_seat"]`` is the agent's seat in the game the step played (for a
      finished board: the finished game's seat); ``reset_infos[i]["agent_seat"]`` after
      ``reset``.
    * ``seed(s)`` takes effect at the next ``reset()``, as in SB3. One torch generator
      drives every board (and the opponent), so it is seeded with ``s`` itself; the
      per-board seeds ``s + i`` that SB3 reports are nominal.

    Wrap it in ``VecMonitor`` for SB3's episode statistics (``rollout/ep_rew_mean``).

    Args:
        game: a game id or a built :class:`~rltransfer.games.BoardGame`.
        num_envs: the number of boards N.
        opponent: see :data:`OpponentSpec` (default ``"random"``).
        agent_seat: ``0``, ``1`` or ``"random"`` (default: a coin flip per board and game).
        device: where the boards (and a run opponent's network) live; NumPy comes out.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"`` (``get_images``).
        **options: game options, e.g. ``size=6``.
    """

    def __init__(
        self,
        game: str | BoardGame,
        num_envs: int = 16,
        *,
        opponent: OpponentSpec = "random",
        agent_seat: Seat = "random",
        device: torch.device | str = "cpu",
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        built = build_game(game, options)
        self.boards = BoardGameVectorEnv(
            built,
            num_envs,
            agent_seat=agent_seat,
            opponent=opponent,
            device=device,
            render_mode=render_mode,
        )
        self.game = built
        self._actions: np.ndarray | None = None
        # VecEnv.__init__ reads get_attr("render_mode"), so the boards must exist first.
        super().__init__(
            num_envs, self.boards.single_observation_space, self.boards.single_action_space
        )

    # ------------------------------------------------------------------- stepping
    def reset(self) -> np.ndarray:
        """N new games; uses (then forgets) the seed given to :meth:`seed`, if any."""
        if any(self._options):
            raise ValueError(f"{self.game.id}: BoardGameVecEnv.reset takes no options")
        obs, infos = self.boards.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{"agent_seat": s} for s in infos["agent_seat"].tolist()]
        return _numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """The agent's moves, the opponent's replies, and same-step resets (see class doc)."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions)")
        actions, self._actions = self._actions, None
        if actions.size != self.num_envs:
            raise ValueError(
                f"{self.game.id}: expected {self.num_envs} actions (one per board), "
                f"got shape {list(actions.shape)}"
            )
        a = torch.as_tensor(actions.reshape(self.num_envs), device=self.boards.device)
        obs, reward, done, _, infos = self.boards.step(a)
        seats = torch.where(done, infos["final_info"]["agent_seat"], infos["agent_seat"])
        dones = _numpy(done)
        out: list[dict[str, Any]] = [
            {"agent_seat": s, "TimeLimit.truncated": False} for s in seats.tolist()
        ]
        if dones.any():
            final = _numpy(infos["final_obs"])
            for i in np.flatnonzero(dones):
                out[i]["terminal_observation"] = final[i]
        return _numpy(obs), _numpy(reward), dones, out

    def action_masks(self) -> np.ndarray:
        """``[N, A]`` bool: the agent's legal actions on every board."""
        return _numpy(self.boards.action_masks())

    def close(self) -> None:
        self.boards.close()

    # --------------------------------------------------------- SB3's per-env access
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of the boards' env, one entry per board index.

        The boards share one :class:`BoardGameVectorEnv`; its attributes are looked up
        there. A tensor whose first dimension is N (e.g. ``agent_seat``) is split per board
        (as NumPy), a tuple of N (e.g. ``render()``'s frames) too; any other value is the
        same for every board and repeated.
        """
        return self._per_board(getattr(self.boards, attr_name), indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the boards' shared env: only for all boards at once."""
        if list(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(
                f"set_attr({attr_name!r}): the {self.num_envs} boards share one env, so an "
                "attribute can only be set for all of them (indices=None)"
            )
        setattr(self.boards, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method once for the whole batch; split its result as :meth:`get_attr` does.

        ``env_method("action_masks")`` (what ``MaskablePPO`` calls) gives one ``[A]`` bool
        array per board. Methods run once, not once per board: the boards are one batch.
        """
        if method_name == "action_masks":
            return self._per_board(self.action_masks(), indices)
        method = getattr(self.boards, method_name)
        return self._per_board(method(*method_args, **method_kwargs), indices)

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Always ``False``: the boards are not gymnasium envs, so nothing wraps them."""
        return [False for _ in self._get_indices(indices)]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next :meth:`reset` (SB3 semantics; see the class docstring)."""
        return super().seed(seed)

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One ``[H, W, 3]`` uint8 frame per board (``render_mode="rgb_array"`` only)."""
        if self.render_mode != "rgb_array":
            return [None for _ in range(self.num_envs)]
        state = self.boards.game_state
        return [_rgb(self.game, state, i) for i in range(self.num_envs)]

    def _per_board(self, value: Any, indices: VecEnvIndices) -> list[Any]:
        idx = list(self._get_indices(indices))
        n = self.num_envs
        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == n:
            value = _numpy(value)
        if isinstance(value, np.ndarray) and value.ndim > 0 and value.shape[0] == n:
            return [value[i] for i in idx]
        if isinstance(value, tuple) and len(value) == n:
            return [value[i] for i in idx]
        return [value for _ in idx]


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _rgb(game: BoardGame, state: State, index: int) -> np.ndarray:
    frame = render_board(game, state, "rgb_array", index)
    assert isinstance(frame, np.ndarray)  # "rgb_array" always gives an image
    return frame


# ---------------------------------------------------------------------- the extractor
class PretrainedTrunk(BaseFeaturesExtractor):
    """An rltransfer run's stem and shared trunk as an SB3 features extractor.

    ``obs [B, C, H, W] -> stem -> trunk -> x [B, D, H, W]``, then two views of ``x``
    concatenated into ``features [B, D + cell_channels * H * W]``:

    * ``x`` averaged over the board (``D``): what the whole position looks like, as
      rltransfer's value head sees it;
    * a new 1x1 convolution ``D -> cell_channels`` (ReLU), flattened: *where* things are.
      SB3's policy and value heads are MLPs on a flat vector, and cell actions need
      per-cell information that pooling alone would throw away.

    The stem is the run's stem for ``game`` (a task name of the run, or a game id that is
    unique in it; its planes must be the observation's). When the run never played that
    game, the stem is new, with the observation's planes and SB3's initialisation of new
    layers (orthogonal under ``ortho_init``; drawn from torch's RNG, which SB3 seeds), and
    only the trunk comes from the run. ``freeze=True`` freezes what came from the run (the
    trunk, and the stem if it was loaded: no gradient, so SB3's optimizer leaves them
    bit-for-bit unchanged); the 1x1 projection and a new stem always train. SB3's orthogonal
    re-initialisation (``ortho_init``) reaches only the new layers (see :meth:`apply`). No
    BatchNorm anywhere, so SB3's train/eval mode switches change nothing here.

    ``stem_task`` tells which of the run's tasks gave the stem (``None``: a new stem).
    The run is read again whenever SB3 rebuilds the policy (``PPO.load``), so keep it
    where it was; the weights saved in the SB3 zip then replace what was read.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        run: str | Path,
        game: str,
        freeze: bool = True,
        cell_channels: int = 8,
    ) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
            raise ValueError(
                f"PretrainedTrunk needs a Box observation space of [C, H, W] planes, "
                f"got {observation_space}"
            )
        planes, height, width = observation_space.shape
        ckpt = checkpoint_dir(run)
        cfg, stem_task = _read_run(ckpt, game, planes)
        super().__init__(observation_space, cfg.channels + cell_channels * height * width)
        self.stem = Stem(planes, cfg)
        self.trunk = Trunk(cfg)
        self.cells = nn.Conv2d(cfg.channels, cell_channels, 1)
        self.stem_task = stem_task
        self.source = ckpt
        weights = load_weights(ckpt)
        load_into(self.trunk, weights, ckpt, prefix="trunk.")
        if stem_task is not None:
            load_into(self.stem, weights, ckpt, prefix=f"stems.{stem_task}.")
        self.loaded: tuple[nn.Module, ...] = (self.trunk,) + ((self.stem,) if stem_task else ())
        for module in self.loaded:
            module.requires_grad_(not freeze)

    def apply(self, fn: Callable[[nn.Module], None]) -> PretrainedTrunk:
        """``fn`` on every submodule except those loaded from the run.

        SB3's actor-critic policies re-initialise their features extractor with
        ``extractor.apply(init_weights)`` (orthogonal weights, zero biases) when
        ``ortho_init=True``, the default; that would silently overwrite the run's weights,
        frozen or not. New layers (the projection, a new stem) still get SB3's init.
        """
        for module in self.children():
            if not any(module is done for done in self.loaded):
                module.apply(fn)
        fn(self)
        return self

    def forward(self, observations: Tensor) -> Tensor:
        x = self.trunk(self.stem(observations))
        cells = torch.relu(self.cells(x)).flatten(1)
        return torch.cat([x.mean(dim=(2, 3)), cells], dim=1)


def _read_run(ckpt: Path, game: str, planes: int) -> tuple[NetConfig, str | None]:
    """The run's network config and the task whose stem fits ``game`` (or ``None``)."""
    meta = read_network(ckpt)
    try:
        task = meta.find_task(game, ckpt)
    except AmbiguousTaskError:
        raise
    except UnknownTaskError:
        return meta.net, None
    if meta.tasks[task].num_planes != planes:
        raise CheckpointError(
            f"{ckpt}: the stem of {task} takes {meta.tasks[task].num_planes} planes, "
            f"the observation has {planes}"
        )
    return meta.net, task


class _Distribution(Protocol):
    distribution: torch.distributions.Categorical


class _ActorCritic(Protocol):
    """What SB3's ``ActorCriticPolicy`` and sb3-contrib's ``MaskableActorCriticPolicy``
    share (they have no common base class with ``get_distribution``)."""

    device: torch.device
    training: bool

    def get_distribution(self, obs: Tensor) -> _Distribution: ...

    def set_training_mode(self, mode: bool) -> None: ...


class SB3Player:
    """An SB3 actor-critic model (``PPO``, ``A2C``, ``MaskablePPO``) as an rltransfer player.

    It reads the policy's action logits, masks illegal moves (probability exactly 0, as
    rltransfer's own policies) and samples with the match's torch ``generator`` (Gumbel-max,
    as :class:`~rltransfer.play.players.PolicyPlayer`), so a seeded ``play_match`` is
    reproducible; ``model.predict`` would sample from torch's global RNG instead.
    ``sample=False`` plays the most probable legal move. The model must have been trained
    on this game's observation planes (e.g. on a :class:`BoardGameVecEnv`).
    """

    def __init__(
        self, model: BaseAlgorithm | BasePolicy, sample: bool = True, name: str = "sb3"
    ) -> None:
        policy = model.policy if isinstance(model, BaseAlgorithm) else model
        if not hasattr(policy, "get_distribution"):
            raise TypeError(f"{type(policy).__name__} has no action distribution to play from")
        self.policy: _ActorCritic = policy  # type: ignore[assignment]  # checked just above
        self.sample = sample
        self.name = name

    @torch.no_grad()
    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        """``[N]`` actions for the player to move on every board."""
        obs = game.observe(state).to(self.policy.device)
        mask = game.legal_mask(state)
        was_training = self.policy.training
        self.policy.set_training_mode(False)
        try:
            logits = self.policy.get_distribution(obs).distribution.logits
        finally:
            self.policy.set_training_mode(was_training)
        logits = masked_logits(logits.to(mask.device), mask)
        return sample_logits(logits, generator) if self.sample else logits.argmax(dim=1)
