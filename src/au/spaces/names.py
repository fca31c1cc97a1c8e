"""The feature spaces' names, importable without numpy (the CLI declares its choices from them)."""

NAMES = ("pixels", "hog", "orb", "brisk")
