"""The learning loop: rollout collection, GAE and the PPO loss, the multitask update, train()."""
