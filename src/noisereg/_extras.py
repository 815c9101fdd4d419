"""Optional dependencies: the library needs only torch and numpy; a part that needs more imports
it through :func:`require`, which names the extra to install when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise an ImportError naming ``pip install 'noisereg[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{purpose} needs {module.split('.')[0]}: "
                          f"pip install 'noisereg[{extra}]'") from err
