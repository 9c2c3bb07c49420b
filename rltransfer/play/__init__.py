"""Players and matches: scripted opponents, policies as players, batched evaluation."""
