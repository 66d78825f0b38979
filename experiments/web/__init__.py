"""The lab in a browser: ``splinterlab lab`` serves a live page over a ``Lab``."""
