"""A run on disk: its folder (names, locks, --overwrite), checkpoints and TensorBoard logs."""
