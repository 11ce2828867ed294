"""Processes claimdiff supervises: a local `vllm serve` under a guard process."""
