"""The multitask policy network: per-game stems, one shared trunk, per-game heads."""
