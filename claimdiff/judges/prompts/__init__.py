"""Versioned prompt templates (`<name>.txt`); a template's version is the hash of its text."""
