"""Helpers every part of Digitale Balie uses: atomic files, child-process start-up, free ports,
and the protocol of `balie` subcommands.

This package imports none of the parts (`sfu`, `control`, `recorder`, `loadtest`); each of them
may import it. `tests/test_layering.py` checks both.
"""
