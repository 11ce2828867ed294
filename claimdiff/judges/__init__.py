"""The judge: backend protocol, backends, prompts, parsing and the Beam model handler."""
