"""Data: bundled image sets and generated data models of the papers.

>>> from noisereg import data
>>> data.DATASETS
('digits', 'mnist5k')
>>> data.signal_noise(n=4, d=6, mu_norm=2.0, sigma_p=1.0).x.shape
torch.Size([4, 2, 6])
"""

from noisereg._lazy import lazy_exports

_EXPORTS = {
    "DATASETS": "noisereg.data.images",
    "Split": "noisereg.data.images",
    "load_split": "noisereg.data.images",
    "signal_noise": "noisereg.data.signal_noise_model",  # module name != function name
    "SignalNoise": "noisereg.data.signal_noise_model",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
