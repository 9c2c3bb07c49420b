"""rltransfer beside other libraries: Stable-Baselines3 envs, players and baselines."""
