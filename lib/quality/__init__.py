"""Quality: the runner's measurement of a target, the gates on it, the gates file, and the learned patterns."""
