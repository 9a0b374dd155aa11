"""Runs as files: config and sweep files, executors (local, Ray), tracking."""
