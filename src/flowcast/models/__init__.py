"""RNN/LSTM/GRU global forecasters: lazy windows, Lightning module, training, prediction, baselines.

Import the submodules directly (`flowcast.models.train`, `.predict`, `.baselines`); this package
imports nothing heavy so that the CLI stays fast.
"""
