"""The README's experiments table names exactly the registered experiments, with their claims."""

import re
from pathlib import Path

from noisereg.experiments.registry import experiments

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_experiment_with_paper_and_claim() -> None:
    text = README.read_text()
    table = re.search(r"<!-- experiments-table.*?-->\n(.*?)<!-- /experiments-table -->", text, re.S)
    assert table, "README has no experiments table"
    rows = [line.strip("|").split("|") for line in table.group(1).splitlines()[2:]]
    listed = {r[0].strip().strip("`"): (r[1].strip(), r[2].strip()) for r in rows}
    assert listed == {e.name: (e.paper, e.claim) for e in experiments().values()}


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
