"""Random numbers that belong to a board: a counter-based stream per board key.

A search over N boards draws many random numbers per board (a rollout's moves, the order
in which unvisited children are tried, the root's Gumbel noise). Drawn from one shared
``torch.Generator``, board ``i``'s numbers would depend on how many boards share the batch,
so a board searched alone would play out differently than in a batch. Instead every board
has a 32-bit *key* (drawn once per search from the generator, or passed in), and each
number is a hash of the key and counters that name the draw (simulation, ply, node,
action): ``bits(key, a, b, ...)``. The same key and counters give the same number in any
batch, on any device.

The hash is a 32-bit integer mixer (xor-shift and multiply, the constant ``0x45d9f3b``
with shifts of 16, a well-known avalanche hash), computed in int64 so that every product
stays below 2**63: no signed overflow, so CPU and CUDA agree bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MASK32 = (1 << 32) - 1
_MULT = 0x45D9F3B  # < 2**27: a 32-bit value times it stays below 2**59
_GOLDEN = 0x9E3779B9  # 2**32 / golden ratio: spreads consecutive counters apart

#: Stream ids, the first counter of every draw, so that no two uses share numbers.
ROLLOUT, ORDER, GUMBEL = 0, 1, 2


def board_keys(n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
    """[N] int64 keys in ``[0, 2**32)``, drawn from ``generator`` (on its device), moved to
    ``device``."""
    where = generator.device if generator is not None else torch.device("cpu")
    keys = torch.randint(0, 1 << 32, (n,), generator=generator, device=where)
    return keys.to(device)


def check_keys(keys: Tensor, n: int, device: torch.device) -> Tensor:
    """``keys`` as [N] int64 in ``[0, 2**32)`` on ``device``; a ``ValueError`` otherwise."""
    if keys.shape != (n,) or keys.dtype.is_floating_point or keys.dtype == torch.bool:
        raise ValueError(
            f"keys must be [N] = [{n}] integers (one per board), got {keys.dtype} "
            f"{list(keys.shape)}"
        )
    return keys.to(device=device, dtype=torch.int64) & _MASK32


def mix(x: Tensor) -> Tensor:
    """The 32-bit mixer on int64 values in ``[0, 2**32)`` (see the module docstring)."""
    x = x ^ (x >> 16)
    x = (x * _MULT) & _MASK32
    x = x ^ (x >> 16)
    x = (x * _MULT) & _MASK32
    return x ^ (x >> 16)


def bits(key: Tensor, *counters: int | Tensor) -> Tensor:
    """32 random bits (int64 in ``[0, 2**32)``) named by ``key`` and ``counters``.

    Each counter is folded in with one more mix, so ``bits(k, 1, 2) != bits(k, 2, 1)``.
    Tensor counters broadcast against ``key`` (e.g. ``key[:, None]`` with ``arange(A)``).
    """
    x = key
    for counter in counters:
        x = mix((x + _GOLDEN * (counter + 1)) & _MASK32)
    return x


def below(random_bits: Tensor, n: Tensor) -> Tensor:
    """An integer uniform in ``[0, n)`` from 32 random bits (multiply-shift: ``n < 2**31``)."""
    return (random_bits * n) >> 32


def uniform(random_bits: Tensor) -> Tensor:
    """float32 uniform in ``(0, 1)``: the top 24 bits, centred in their interval."""
    return ((random_bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def gumbel(random_bits: Tensor) -> Tensor:
    """Standard Gumbel samples, ``-log(-log(u))``."""
    return -torch.log(-torch.log(uniform(random_bits)))


def choose_legal(legal: Tensor, random_bits: Tensor) -> Tensor:
    """[N] int64: an action uniform among the ``True`` columns of ``legal`` [N, A], picked
    by ``random_bits`` [N] (the k-th legal action, k uniform below the count of legal
    actions). Rows without a legal action give action 0."""
    count = legal.to(torch.int16).cumsum(dim=1, dtype=torch.int16)
    k = below(random_bits, count[:, -1].to(torch.int64))
    return (count > k[:, None]).to(torch.uint8).argmax(dim=1)
