"""claimdiff: typed, image-verified claim differences and rewards for caption RL."""

from __future__ import annotations

__version__ = "0.1.0"
