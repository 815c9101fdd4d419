"""Seeds run on a real local Ray cluster (2 CPUs) give the bytes of a sequential run; the
cluster listens on loopback only; a unit's exception comes back as itself; ``--ray`` takes an
address or nothing, and never an experiment name."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_parallel import TINY, _runs, _same_results

from noisereg.lab._ray import RayExecutor
from noisereg.lab.cli import main
from noisereg.lab.experiments.registry import get
from noisereg.lab.runner import RunError, run_many


@pytest.fixture(scope="module")
def cluster():
    with RayExecutor(num_cpus=2) as executor:
        yield executor


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except FileNotFoundError:  # the thread ended meanwhile
                continue
            found += children
            todo += children
    return found


def _socket_inodes(pids: list[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except (FileNotFoundError, PermissionError):  # ended meanwhile
            continue
        inodes |= {link[len("socket:["):-1] for link in links if link.startswith("socket:[")}
    return inodes


# /proc/net/tcp{,6} write addresses as hex of the bytes in host (little-endian) order per
# 32-bit word: 127.0.0.1 is 0100007F; ::ffff:127.0.0.1 and ::1 in tcp6.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_the_local_cluster_listens_on_loopback_only(cluster) -> None:
    import ray

    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
    assert ray.cluster_resources()["CPU"] == 2
    ours = _socket_inodes(_descendants(os.getpid()))
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in ours:  # state LISTEN, a cluster process's
                listening.append(fields[1].split(":")[0])
    assert len(listening) >= 3  # the GCS, the raylet's servers, the workers
    assert set(listening) <= LOOPBACK, listening


def test_a_ray_cluster_gives_the_bytes_of_a_sequential_run(cluster, tmp_path) -> None:
    sequential = run_many(_runs(), tmp_path / "one")
    assert run_many(_runs(), tmp_path / "ray", executor=cluster) == sequential
    for name in TINY:
        _same_results(tmp_path / "one", tmp_path / "ray", name)


def test_a_unit_failing_on_ray_raises_its_own_exception(cluster, tmp_path) -> None:
    exp = get("label-noise-lasso")
    # Valid, but past the edge of linear stability: every seed diverges within a few steps.
    config = dataclasses.replace(exp.quick, **TINY[exp.name], init_scales=(0.01, 1.0),
                                 step_size=0.03)
    with pytest.raises(RunError, match=r"seed [01] failed: ValueError: the run diverged") as err:
        run_many([(exp, config, [0, 1], "quick")], tmp_path, executor=cluster)
    assert type(err.value.__cause__) is ValueError  # not Ray's wrapper of it
    assert "Traceback" not in str(err.value)
    assert not (tmp_path / exp.name).exists()


def test_the_command_line_joins_a_running_cluster(cluster, tmp_path) -> None:
    import ray

    tiny = [f"--set={k}={v}" for k, v in TINY["pgd-group-lasso"].items()]
    args = ["run", "pgd-group-lasso", *tiny, "--seeds", "1", "--quiet"]
    assert main([*args, "--jobs", "1", "--out", str(tmp_path / "one")]) == 0
    address = ray.get_runtime_context().gcs_address
    joined = subprocess.run([sys.executable, "-m", "noisereg.lab", *args, f"--ray={address}",
                             "--out", str(tmp_path / "ray")], capture_output=True, text=True,
                            timeout=120)
    assert joined.returncode == 0, joined.stderr
    _same_results(tmp_path / "one", tmp_path / "ray", "pgd-group-lasso")


@pytest.mark.parametrize("given, expected", [
    (["run", "pgd-group-lasso", "--ray"], ""),
    (["run", "pgd-group-lasso", "--ray=auto"], "auto"),
    (["run", "pgd-group-lasso", "--ray", "10.0.0.5:6379"], "10.0.0.5:6379"),
    (["reproduce", "--ray", "--only", "pgd-lasso"], ""),
    (["reproduce", "--ray=ray://head:10001"], "ray://head:10001"),
    (["reproduce"], None),
])
def test_ray_takes_an_address_or_nothing(monkeypatch, given, expected) -> None:
    seen = {}

    def fake(args) -> int:
        seen["ray"] = args.ray
        return 0

    monkeypatch.setattr(f"noisereg.lab.cli._cmd_{given[0]}", fake)
    assert main(given) == 0 and seen["ray"] == expected


@pytest.mark.parametrize("given, message", [
    (["run", "--ray", "pgd-group-lasso"], "--ray=ADDRESS, or --ray after the experiment name"),
    (["run", "pgd-group-lasso", "--ray=head"], "HOST:PORT"),
    (["run", "pgd-group-lasso", "--ray=head:6379", "--jobs", "2"], "--jobs sets the CPUs"),
])
def test_bad_ray_values_are_one_line_exit_2(tmp_path, one_line_error, given, message) -> None:
    assert main([*given, "--out", str(tmp_path / "o")]) == 2
    assert message in one_line_error() and not (tmp_path / "o").exists()

