"""See `claimdiff/judges/__init__.py` for the layout of the judge."""
