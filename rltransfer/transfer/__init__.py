"""Carry what a trained network learned to a new game, and measure what that bought.

* :mod:`~rltransfer.transfer.network`: the target network (the source's trunk; fresh,
  kept or mapped stem and heads) and the freeze / gradual-unfreeze schedules;
* :mod:`~rltransfer.transfer.metrics`: jumpstart, asymptotic gain, time-to-threshold
  ratio and area ratio on learning curves (Taylor & Stone 2009), and the few-shot score;
* :mod:`~rltransfer.transfer.experiment`: transfer and scratch arms over paired seeds,
  with a report (``rltransfer transfer``). Not imported here: it pulls in the training
  loop, which itself builds transfer networks.
"""

from rltransfer.transfer.metrics import (
    Curve,
    area,
    area_ratio,
    asymptotic_gain,
    few_shot,
    jumpstart,
    time_to_threshold,
    time_to_threshold_ratio,
)
from rltransfer.transfer.network import (
    TransferError,
    param_groups,
    set_trunk_frozen,
    transfer_net,
    trunk_frozen,
)

__all__ = [
    "Curve",
    "TransferError",
    "area",
    "area_ratio",
    "asymptotic_gain",
    "few_shot",
    "jumpstart",
    "param_groups",
    "set_trunk_frozen",
    "time_to_threshold",
    "time_to_threshold_ratio",
    "transfer_net",
    "trunk_frozen",
]
