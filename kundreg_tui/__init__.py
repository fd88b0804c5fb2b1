"""kundreg — ett kundregister i terminalen."""

__version__ = "0.1.0"
