"""Evaluation: accuracy metrics, rolling-origin backtests, leaderboard and promotion decision."""

from flowcast.evaluation.backtest import BacktestResult, Forecaster, backtest
from flowcast.evaluation.metrics import score
from flowcast.evaluation.selection import PromotionDecision, leaderboard, select, window_board

__all__ = ["BacktestResult", "Forecaster", "PromotionDecision", "backtest", "leaderboard", "score", "select",
           "window_board"]
