"""Execution: the embedding loop over shards, and the executors that schedule it."""
