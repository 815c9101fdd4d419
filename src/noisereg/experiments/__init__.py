"""One module per experiment; see :mod:`noisereg.experiments.base` for the contract."""
