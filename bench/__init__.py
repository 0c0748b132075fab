"""Load and soak drivers (speed targets live here, never in unit tests)."""
