"""The README's experiments table names exactly the registered experiments, with their claims."""

import re
from collections import Counter
from pathlib import Path

from noisereg.lab.experiments.claims import SOURCES
from noisereg.lab.experiments.registry import experiments

README = Path(__file__).resolve().parents[3] / "README.md"


def _sources(exp) -> str:
    counts = Counter(spec.source for spec in exp.claim_specs)
    return ", ".join(f"{counts[s]} {s}" for s in SOURCES if counts[s])


def test_readme_lists_every_experiment_with_paper_claim_and_sources() -> None:
    text = README.read_text()
    table = re.search(r"<!-- experiments-table.*?-->\n(.*?)<!-- /experiments-table -->", text, re.S)
    assert table, "README has no experiments table"
    rows = [line.strip("|").split("|") for line in table.group(1).splitlines()[2:]]
    listed = {r[0].strip().strip("`"): tuple(c.strip() for c in r[1:4]) for r in rows}
    expected = {e.name: (e.paper, e.claim, _sources(e)) for e in experiments().values()}
    table_text = "\n".join(f"| `{n}` | {p} | {c} | {s} |" for n, (p, c, s) in
                           sorted(expected.items()))
    assert listed == expected, f"the README's table should read:\n{table_text}"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in README.read_text() and "make test" in ci


def test_readme_usage_example_runs_and_trains() -> None:
    import torch

    from noisereg.data import load_split

    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    data = load_split("digits", 256, 10, seed=0)
    namespace = {"x": data.x_train, "y": data.y_train}
    exec(code, namespace)
    model, opt = namespace["model"], namespace["opt"]
    before = namespace["ce"](model(data.x_train), data.y_train).mean()
    for _ in range(30):
        opt.step(namespace["closure"])
    after = namespace["ce"](model(data.x_train), data.y_train).mean()
    assert torch.isfinite(after) and after < 0.8 * before
