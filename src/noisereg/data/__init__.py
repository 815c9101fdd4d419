"""Data: bundled image sets and generated data models of the papers."""

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
