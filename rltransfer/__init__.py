"""rltransfer: multitask and game-transfer RL on batched, PyTorch-native board games."""

__version__ = "0.1.0"
