"""Histories that repeat (or stay constant) exactly, up to float noise, or not at all: the kinds every consumer of
the MASE / RMSSE scales is checked on (`flowcast.evaluation.metrics`: a scale of float noise counts as 0)."""

from __future__ import annotations

import math

import numpy as np


def sine(n: int, season: int = 7) -> list[float]:
    """100 + 10 sin(2 pi t / season): repeats every season up to float noise (sin of 2 pi (t + season) / season
    is not bit for bit sin of 2 pi t / season)."""
    return [100.0 + 10.0 * math.sin(2 * math.pi * t / season) for t in range(n)]


def detrended(pattern: list[float], n: int, slope: float = 0.1) -> list[float]:
    """`pattern` repeated, with a trend added and taken off again: (p + 0.1 t) - 0.1 t, equal to p up to float
    noise (4.0 comes back as 3.9999999999999996 at some t)."""
    return [(pattern[t % len(pattern)] + slope * t) - slope * t for t in range(n)]


def exact(pattern: list[float], n: int) -> list[float]:
    """`pattern` repeated bit for bit."""
    return [pattern[t % len(pattern)] for t in range(n)]


def noisy(n: int, season: int = 7, seed: int = 0) -> list[float]:
    """`sine` plus real noise (sd 1): an ordinary series, whose scales must not change."""
    rng = np.random.default_rng(seed)
    return [v + float(e) for v, e in zip(sine(n, season), rng.standard_normal(n), strict=True)]


def differs(a: list[float], b: list[float]) -> bool:
    """Whether two histories differ anywhere, bit for bit (a float-noise fixture must, or it tests nothing)."""
    return any(x != y for x, y in zip(a, b, strict=True))
