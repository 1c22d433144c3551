"""Synthetic participants that load the SFU and measure it."""
