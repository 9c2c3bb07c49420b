"""What to run, as data: the settings dataclasses, TOML suites and agent presets."""
