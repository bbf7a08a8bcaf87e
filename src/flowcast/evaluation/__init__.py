"""Evaluation: accuracy metrics, rolling-origin backtests, the candidates and their leaderboard,
conformal intervals, learned combination weights and the promotion decision."""

from flowcast.evaluation.backtest import BacktestResult, Forecaster, backtest
from flowcast.evaluation.metrics import score
from flowcast.evaluation.selection import candidate_board, leaderboard, window_board

__all__ = ["BacktestResult", "Forecaster", "backtest", "candidate_board", "leaderboard", "score", "window_board"]
