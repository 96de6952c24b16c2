"""From the composed config to a validated one: Hydra's errors in words, unknown keys, user code, rules."""
