"""Reliability and security scenarios for fmkeras; `python -m reliability` prints the JSON scoreboard."""
