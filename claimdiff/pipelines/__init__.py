"""Pipelines wire stages (transforms) together; they hold no stage logic of their own."""
