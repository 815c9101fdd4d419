"""One module per experiment; see :mod:`noisereg.lab.experiments.base` for the contract."""
