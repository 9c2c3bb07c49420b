"""The search tree of N boards as tensors: node statistics, child links and game states.

Board ``b`` owns nodes ``0 .. M-1`` of its own tree; node 0 is the root, every simulation
adds at most one node (the next free index, ``count[b]``), and the last node ``M - 1`` is
a *scratch* slot: a board that adds no node in a simulation writes there, and paths
shorter than the batch's longest are padded with it, so every write is one batched
scatter without masks. Nothing links to the scratch slot, so its contents never matter.

Per node ``[N, M]``: ``visits``, ``value_sum`` (from the view of **the player to move at
the node**), ``outcome`` (the proven result for that player, or :data:`UNPROVEN`),
``terminal``, ``parent``, ``action`` (the move that led to it from the parent), and
``net_value`` (the evaluator's value when the node was added). Per edge ``[N, M, A]``:
``children`` (the node an action leads to, ``-1`` while unexpanded), ``legal``,
``logits`` (the prior's logits; zeros without a network) and ``order`` (random priorities
that break ties between equal children, drawn per board key). The game state of node
``j`` of board ``b`` is row ``b * M + j`` of ``states``, one batched :class:`State` of
N x M boards, so a node is expanded by gathering its parent's row and one ``game.step``.

Every game here alternates strictly (a pass is a ply), so the player to move changes at
every edge: a child's value is the negative of its value from the parent's side, and a
value ``v`` at depth ``L`` counts ``v * (-1) ** (L - d)`` at the ancestor of depth ``d``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.search import noise

#: ``outcome`` of a node whose result is not proven (proven: -1 loss, 0 draw, +1 win).
UNPROVEN = 2


@dataclasses.dataclass
class Tree:
    """The trees of N boards (see the module docstring); built by :func:`new_tree`."""

    states: State  # [N * M]
    visits: Tensor  # [N, M] float32
    value_sum: Tensor  # [N, M] float32, the mover-at-the-node's view
    outcome: Tensor  # [N, M] int8: -1 / 0 / +1 proven for the node's mover, or UNPROVEN
    terminal: Tensor  # [N, M] bool
    parent: Tensor  # [N, M] int64, -1 at the root
    action: Tensor  # [N, M] int64, the move from the parent (-1 at the root)
    net_value: Tensor  # [N, M] float32: the evaluator's value of the node when added
    children: Tensor  # [N, M, A] int32, -1 where unexpanded
    legal: Tensor  # [N, M, A] bool (all False on terminal nodes)
    logits: Tensor  # [N, M, A] float32 prior logits (legal ones; zeros: a uniform prior)
    order: Tensor  # [N, M, A] int32 tie-break priorities
    count: Tensor  # [N] int64: nodes in use (the next free index)

    @property
    def batch_size(self) -> int:
        return int(self.visits.shape[0])

    @property
    def num_nodes(self) -> int:
        return int(self.visits.shape[1])

    @property
    def scratch(self) -> int:
        return self.num_nodes - 1

    def rows(self, node: Tensor) -> Tensor:
        """[N] flat rows of ``states`` for one node per board."""
        return torch.arange(self.batch_size, device=node.device) * self.num_nodes + node

    def state_at(self, node: Tensor) -> State:
        """The game states [N] of one node per board."""
        return self.states.index(self.rows(node))

    def edges(self, node: Tensor) -> tuple[Tensor, Tensor]:
        """(children [N, A] int64, legal [N, A]) of one node per board."""
        ar = torch.arange(self.batch_size, device=node.device)
        return self.children[ar, node].long(), self.legal[ar, node]

    def child_stats(self, kids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(visits, value from the *parent's* side, proven outcome for the parent's mover)
        [N, A] of the children ``kids`` [N, A] (unexpanded: 0 visits, value 0, UNPROVEN)."""
        known = kids >= 0
        k = kids.clamp(min=0)
        n = torch.where(known, self.visits.gather(1, k), 0.0)
        w = torch.where(known, -self.value_sum.gather(1, k), 0.0)
        out = self.outcome.gather(1, k)
        proven = torch.where(known & (out != UNPROVEN), -out, UNPROVEN)
        return n, w, proven


def new_tree(game: BoardGame, root: State, num_nodes: int, keys: Tensor, with_logits: bool) -> Tree:
    """An empty tree per board over ``num_nodes`` slots (root + nodes + scratch).

    The root (node 0) gets its state, legal moves and tie-break order; :func:`add_node`
    fills the rest. ``with_logits`` keeps room for per-node prior logits.
    """
    n, m, a, dev = root.batch_size, num_nodes, game.num_actions, root.device
    states = root.map(lambda t: t.repeat_interleave(m, 0))
    tree = Tree(
        states=states,
        visits=torch.zeros(n, m, device=dev),
        value_sum=torch.zeros(n, m, device=dev),
        outcome=torch.full((n, m), UNPROVEN, dtype=torch.int8, device=dev),
        terminal=torch.zeros(n, m, dtype=torch.bool, device=dev),
        parent=torch.full((n, m), -1, dtype=torch.int64, device=dev),
        action=torch.full((n, m), -1, dtype=torch.int64, device=dev),
        net_value=torch.zeros(n, m, device=dev),
        children=torch.full((n, m, a), -1, dtype=torch.int32, device=dev),
        legal=torch.zeros(n, m, a, dtype=torch.bool, device=dev),
        # without a prior, one shared row of zeros (read-only): a uniform prior everywhere
        logits=(
            torch.zeros(n, m, a, device=dev)
            if with_logits
            else torch.zeros(n, 1, a, device=dev).expand(n, m, a)
        ),
        order=torch.zeros(n, m, a, dtype=torch.int32, device=dev),
        count=torch.ones(n, dtype=torch.int64, device=dev),
    )
    zero = torch.zeros(n, dtype=torch.int64, device=dev)
    tree.terminal[:, 0] = root.terminated
    # a finished root's result for the player listed to move (nothing is searched there)
    mover_sign = 1.0 - 2.0 * root.current_player.to(torch.float32)
    result = (root.reward * mover_sign).to(torch.int8)
    tree.outcome[:, 0] = torch.where(root.terminated, result, tree.outcome[:, 0])
    tree.legal[:, 0] = game.legal_mask(root) & ~root.terminated[:, None]
    tree.order[:, 0] = _order(keys, zero, a)
    return tree


def _order(keys: Tensor, node: Tensor, num_actions: int) -> Tensor:
    """[N, A] int32 random priorities of the actions of ``node`` [N] (31 bits)."""
    actions = torch.arange(num_actions, device=keys.device)
    per_node = noise.bits(keys, noise.ORDER, node)
    return (noise.bits(per_node[:, None], actions) >> 1).to(torch.int32)


def add_node(
    tree: Tree,
    game: BoardGame,
    keys: Tensor,
    parent: Tensor,
    action: Tensor,
    added: Tensor,
) -> tuple[Tensor, State]:
    """Expand ``action`` [N] of node ``parent`` [N] on the boards ``added`` [N] bool.

    Returns (the new node's index [N], scratch where nothing was added; its state [N]).
    The state is computed on every board (one batched ``game.step``), so the caller may
    evaluate it everywhere and keep what it needs. A terminal node is proven at once: its
    value is the result for its mover, the opponent of the player who moved into it.
    """
    ar = torch.arange(tree.batch_size, device=parent.device)
    node = torch.where(added, tree.count, tree.scratch)
    parent_state = tree.state_at(parent)
    state = game.step(parent_state, action, where=added)  # others: never illegal moves
    rows = tree.rows(node)
    for name, field in tree.states.tensors().items():
        field.index_copy_(0, rows, getattr(state, name))
    tree.children[ar, torch.where(added, parent, tree.scratch), action] = node.to(torch.int32)
    tree.parent[ar, node] = parent
    tree.action[ar, node] = action
    tree.terminal[ar, node] = state.terminated
    tree.legal[ar, node] = game.legal_mask(state) & ~state.terminated[:, None]
    tree.order[ar, node] = _order(keys, node, game.num_actions)
    result = terminal_value(parent_state, state)
    tree.outcome[ar, node] = torch.where(
        state.terminated, result.to(torch.int8), torch.full_like(tree.outcome[:, 0], UNPROVEN)
    )
    tree.count += added.to(torch.int64)
    return node, state


def terminal_value(before: State, after: State) -> Tensor:
    """[N] float32: the result of a finished game for the player to move in ``after``,
    i.e. the negative of the reward of ``before``'s mover, who made the last move (read
    from the mover, so it holds whichever player a game lists as next at the end)."""
    mover_sign = 1.0 - 2.0 * before.current_player.to(torch.float32)
    return -after.reward * mover_sign


def backup(tree: Tree, path: Tensor, depth: Tensor, value: Tensor) -> None:
    """Add one visit and the leaf's ``value`` [N] to every node of ``path`` [N, L].

    ``depth`` [N, L] is each entry's depth below the root and ``value`` is from the view
    of the player to move at the leaf, the deepest entry (``leaf = depth.max(1)`` over the
    real entries); an ancestor ``k`` plies above the leaf gets ``(-1) ** k * value``.
    Padding entries name the scratch slot. One scatter per statistic: a path's nodes are
    distinct, so the adds never collide.
    """
    real = path != tree.scratch
    leaf = torch.where(real, depth, -1).amax(dim=1, keepdim=True)
    sign = 1.0 - 2.0 * ((leaf - depth) % 2).to(torch.float32)
    tree.visits.scatter_add_(1, path, real.to(torch.float32))
    tree.value_sum.scatter_add_(1, path, torch.where(real, sign * value[:, None], 0.0))


def solve(tree: Tree, path: Tensor, new_proof: Tensor | None = None) -> None:
    """Prove what the children of the nodes on ``path`` [N, L] (root first) now prove,
    from the deepest entry up (an MCTS-solver: Winands, Bjornsson and Saito 2008).

    A node is a proven win for its mover if one child is a proven loss for the child's
    mover; once every legal child is proven, the node's result is the best of theirs
    (a loss if all are wins for the opponent, else a draw if one is a draw). Recomputing
    a node that nothing changed below is harmless.

    ``new_proof`` [N] bool names the boards whose simulation added a terminal node (the
    only new proof a simulation brings: a new non-terminal leaf is unproven, as its
    unexpanded edge was, and a terminal met again was solved when it was added). Then
    only those boards are solved, and a board stops at the first ancestor that its
    proof leaves as it was (nothing above can change); on the CPU the loop also ends
    once no board is left (a host check per level, which a GPU would pay for). Without
    it every node on the path is solved. (A live node always has a legal move in the
    searchable games: Othello's pass is a move; a node with none would stay unproven here
    where solving every path would mark it, wrongly, -2.)
    """
    ar = torch.arange(tree.batch_size, device=path.device)
    real = path != tree.scratch
    leaf = torch.where(real, torch.arange(path.shape[1], device=path.device), -1).amax(dim=1)
    going = torch.ones_like(real[:, 0]) if new_proof is None else new_proof.clone()
    early = new_proof is not None and path.device.type == "cpu"
    for d in range(path.shape[1] - 1, -1, -1):
        if early and not bool(going.any()):
            break
        node = path[:, d]
        kids, legal = tree.edges(node)
        _, _, proven = tree.child_stats(kids)
        known = legal & (proven != UNPROVEN)
        best = torch.where(known, proven, -2).amax(dim=1).to(torch.int8)
        decided = (best == 1) | (known == legal).all(dim=1)
        update = going & decided & ~tree.terminal[ar, node] & (node != tree.scratch)
        old = tree.outcome[ar, node]
        tree.outcome[ar, node] = torch.where(update, best, old)
        if new_proof is not None:  # past a real ancestor, only a change goes on up
            going = going & ((update & (best != old)) | ~real[:, d] | (d >= leaf))
