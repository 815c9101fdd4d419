"""Models of the papers: MLPs, diagonal linear networks, the patch CNN of the signal-noise model.

>>> import torch
>>> from noisereg import models
>>> models.MLP(4, [8], 3, seed=0)(torch.ones(5, 4)).shape
torch.Size([5, 3])
"""

from noisereg._lazy import lazy_exports

_EXPORTS = {
    "MLP": "noisereg.models.mlp",
    "torch_generator": "noisereg._seeding",
    "he_init_": "noisereg.models.init",
    "DiagonalLinearNet": "noisereg.models.diagonal",
    "GroupNet": "noisereg.models.group",
    "PatchCNN": "noisereg.models.patch_cnn",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
