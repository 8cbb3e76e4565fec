"""Stand-in conda (tests only); see conda/__init__.py."""
