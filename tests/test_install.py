"""The installed layout: ``duetrl.core`` and ``duetrl.backends``, never a bare ``core``.

A wheel is built from the checkout (no setuptools warning allowed) and installed, not
editable, into a fresh virtual environment. The frameworks are not installed again: a
``.pth`` line lends the project venv's site-packages to the fresh one, after its own.
Then ``duetrl info`` and ``import duetrl.backends.tf`` run from a folder outside the
checkout that holds a ``core/`` package of its own, which must not be picked up.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((top, *relative)))
    assert found == listed, f"pyproject.toml packages: missing {found - listed}, stale {listed - found}"


def test_wheel_installs_as_duetrl_namespace(tmp_path: Path) -> None:
    # build from a copy: setuptools writes build/ beside the sources
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("duetrl", "core", "backends"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
         str(wheels), str(source)], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PIP_NO_INPUT": "1"})
    assert build.returncode == 0, build.stderr
    warnings = [line for line in (build.stdout + build.stderr).splitlines()
                if re.search(r"Warning|deprecated", line) and "Location 'file" not in line]
    assert not warnings, "\n".join(warnings)
    (wheel,) = wheels.glob("duetrl-*.whl")

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)  # the project venv's pip installs into it (--python):
    python = fresh / "bin" / "python"  # no ensurepip, several seconds saved
    fresh_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    # the frameworks come from the project venv, appended after the fresh site-packages
    Path(fresh_site, "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                              "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    installed = sorted(p.name for p in Path(fresh_site).iterdir() if not p.name.endswith(".pth"))
    assert "duetrl" in installed and "core" not in installed and "backends" not in installed, installed

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "core").mkdir(parents=True)
    (elsewhere / "core" / "__init__.py").write_text("raise ImportError('the wrong core was imported')\n")
    info = subprocess.run([fresh / "bin" / "duetrl", "info", "--json"], capture_output=True,
                          text=True, cwd=elsewhere)
    assert info.returncode == 0, info.stderr
    code = ("import duetrl.backends.tf as tf_backend, duetrl.core as core; "
            "print(tf_backend.__file__); print(core.__file__)")
    imported = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=elsewhere)
    assert imported.returncode == 0, imported.stderr
    for line in imported.stdout.split():
        assert line.startswith(fresh_site), line
    module = subprocess.run([python, "-m", "duetrl", "--help"], capture_output=True, text=True,
                            cwd=elsewhere)
    assert module.returncode == 0 and "duetrl" in module.stdout, module.stderr
