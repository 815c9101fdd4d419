"""The reproduction lab: experiments, runner, results store and report, benchmarks and the
``noisereg`` command. Installed with ``pip install 'noisereg[lab]'``; the library
(:mod:`noisereg` without ``lab``) never imports it.

``python -m noisereg.lab`` is the ``noisereg`` command."""

from importlib.util import find_spec

_NEEDS = ("scipy", "matplotlib", "tqdm", "sklearn", "mlxtend", "numba")
_missing = [name for name in _NEEDS if find_spec(name) is None]
if _missing:  # checked without importing them: the command starts as fast as before
    raise ImportError(f"noisereg.lab needs {', '.join(_missing)}: pip install 'noisereg[lab]'")
