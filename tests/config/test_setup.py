"""The README's two commands do all the set-up: `make test` installs what the browser tests need from the
machine (scripts/ensure_system_deps.sh), and `.ci/run` adds nothing but the broker choice.

The install step runs for real, under bash, on a PATH that holds only stand-ins for `id`, `sudo`, `apt-get`,
`fc-list` (and `chromium` once "installed"): each stand-in records how it was called, so a test sees exactly
what would have been run on a machine without chromium, as root, through sudo, or with no way to install.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure_system_deps.sh"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]


class Machine:
    """A fake machine: a bin folder that is the whole PATH, and a log of every stand-in's arguments."""

    def __init__(self, path: Path, *, uid: int, chromium: bool, fonts: bool, fc_list: bool = True):
        self.bin = path / "bin"
        self.bin.mkdir()
        self.log = path / "calls.log"
        self.log.touch()
        self.fonts_marker = path / "fonts-installed"
        self._tool("id", f'[ "$1" = -u ] && echo {uid}')
        if fc_list:
            self._tool("fc-list", f'[ -e {shlex.quote(str(self.fonts_marker))} ] && echo "Noto Sans CJK KR"; exit 0')
        if fonts:
            self.fonts_marker.touch()
        if chromium:
            self._tool("chromium", "exit 0")

    def _tool(self, name: str, body: str) -> Path:
        tool = self.bin / name
        tool.write_text(f"#!/bin/bash\n{body}\n")
        tool.chmod(0o755)
        return tool

    def with_apt(self, *, fails_on: str | None = None, installs_chromium: bool = True) -> Machine:
        """An apt-get that records its arguments and "installs" chromium and the fonts (or fails at `fails_on`)."""
        chromium, fonts = shlex.quote(str(self.bin / "chromium")), shlex.quote(str(self.fonts_marker))
        make_chromium = f"printf '#!/bin/bash\\n' > {chromium}; /bin/chmod +x {chromium}" if installs_chromium else ":"
        body = [
            f'echo "apt-get $*" >> {shlex.quote(str(self.log))}',
            f'[ "$1" = {shlex.quote(fails_on or "-")} ] && exit 100',
            'if [ "$1" = install ]; then',
            '  for package in "$@"; do',
            f"    case $package in chromium) {make_chromium};; fonts-noto-cjk) : > {fonts};; esac",
            "  done",
            "fi",
            "exit 0",
        ]
        self._tool("apt-get", "\n".join(body))
        return self

    def with_sudo(self, *, passwordless: bool) -> Machine:
        self._tool(
            "sudo",
            f'echo "sudo $*" >> {shlex.quote(str(self.log))}\n'
            '[ "$1" = -n ] && shift\n'
            f'[ "$1" = true ] && exit {0 if passwordless else 1}\n'
            'exec "$@"',
        )
        return self

    def run(self, **env: str) -> Run:
        result = subprocess.run(
            ["/bin/bash", str(SCRIPT)],
            env={"PATH": str(self.bin), **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return Run(result.returncode, result.stdout, result.stderr, self.log.read_text().splitlines())


def test_nothing_is_run_and_nothing_said_when_chromium_and_korean_fonts_are_there(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=True, fonts=True).with_apt()

    run = machine.run()

    assert (run.returncode, run.stdout, run.stderr, run.calls) == (0, "", "", [])


def test_missing_chromium_and_fonts_are_installed_with_apt_get_in_one_said_line_when_root(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=False, fonts=False).with_apt()

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert run.calls == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk",
    ]
    assert run.stdout.splitlines() == [
        "kbilling: installing chromium fonts-noto-cjk with apt-get (needed by the browser tests; once per machine)"
    ]
    assert machine.run().calls == run.calls  # a second run finds everything and installs nothing more


def test_fontconfig_is_installed_with_the_fonts_when_fc_list_is_missing(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=True, fonts=False, fc_list=False).with_apt()

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert run.calls[-1] == "apt-get install -y -qq --no-install-recommends fontconfig fonts-noto-cjk"


def test_install_goes_through_passwordless_sudo_when_not_root(tmp_path):
    machine = Machine(tmp_path, uid=1000, chromium=False, fonts=True).with_apt().with_sudo(passwordless=True)

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert [call for call in run.calls if call.startswith("sudo") and "apt-get" in call] == [
        "sudo -n apt-get update -qq",
        "sudo -n apt-get install -y -qq --no-install-recommends chromium",
    ]


@pytest.mark.parametrize("sudo", ["needs a password", "absent"])
def test_stops_with_the_one_command_to_run_and_installs_nothing_when_not_root(tmp_path, sudo):
    machine = Machine(tmp_path, uid=1000, chromium=False, fonts=False).with_apt()
    if sudo == "needs a password":
        machine.with_sudo(passwordless=False)

    run = machine.run()

    assert run.returncode != 0
    assert not [call for call in run.calls if "apt-get" in call]
    assert "needs root" in run.stderr
    assert "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium fonts-noto-cjk" in (
        run.stderr.splitlines()
    )


def test_stops_with_the_command_when_apt_get_update_fails(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=False, fonts=True).with_apt(fails_on="update")

    run = machine.run()

    assert run.returncode != 0
    assert run.calls == ["apt-get update -qq"]
    assert "apt-get update failed (no network?)" in run.stderr
    assert "sudo apt-get install -y --no-install-recommends chromium" in run.stderr


def test_stops_when_apt_get_reports_success_but_no_chromium_appears(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=False, fonts=True).with_apt(installs_chromium=False)

    run = machine.run()

    assert run.returncode != 0 and "installed no chromium on PATH" in run.stderr


def test_names_the_package_manager_step_when_the_machine_has_no_apt_get(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=False, fonts=True)

    run = machine.run()

    assert run.returncode != 0
    assert "no apt-get" in run.stderr and "set CHROMIUM_PATH" in run.stderr


def test_chromium_path_is_used_instead_of_installing_when_it_points_at_a_browser(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=False, fonts=True).with_apt()
    browser = machine._tool("my-chromium", "exit 0")

    run = machine.run(CHROMIUM_PATH=str(browser))

    assert (run.returncode, run.calls) == (0, [])


def test_a_chromium_path_that_does_not_exist_is_refused_by_name(tmp_path):
    machine = Machine(tmp_path, uid=0, chromium=True, fonts=True).with_apt()

    run = machine.run(CHROMIUM_PATH=str(tmp_path / "nowhere" / "chromium"))

    assert run.returncode != 0 and run.calls == []
    assert f"CHROMIUM_PATH={tmp_path / 'nowhere' / 'chromium'} is not an executable file" in run.stderr


def test_make_test_runs_the_install_step_before_pytest():
    plan = subprocess.run(
        ["make", "-n", "test", "PYTEST_ARGS=--co"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    step = plan.index("bash scripts/ensure_system_deps.sh")
    assert any("pytest" in line for line in plan[step + 1 :])


# -- .ci/run ---------------------------------------------------------------------------------------------------

# What .ci/run may contain besides comments: the shell preamble, the broker choice, and `make <target>` lines.
CI_PREAMBLE = {
    "#!/usr/bin/env bash",
    "set -euo pipefail",
    'cd "$(dirname "$0")/.."',
}
CI_BROKER_CHOICE = [
    'if [ -z "${CELERY_BROKER_URL:-}" ] && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then',
    'export CELERY_BROKER_URL="redis://127.0.0.1:6379/15"',
    "fi",
]


def ci_steps(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("# ") and line != "#" and line not in CI_PREAMBLE]


def test_ci_run_holds_only_the_broker_choice_and_make_targets_the_readme_names():
    steps = ci_steps((ROOT / ".ci" / "run").read_text())
    readme_targets = set(re.findall(r"`make ([a-z-]+)`|^make ([a-z-]+)", (ROOT / "README.md").read_text(), re.M))
    readme_targets = {target for pair in readme_targets for target in pair if target}

    assert steps[: len(CI_BROKER_CHOICE)] == CI_BROKER_CHOICE, steps
    makes = steps[len(CI_BROKER_CHOICE) :]
    assert makes, "no make target is run"
    unexpected = [step for step in makes if not re.fullmatch(r"make [a-z-]+", step)]
    assert unexpected == [], f"set-up steps in .ci/run that the README does not have: {unexpected}"
    assert {step.split()[1] for step in makes} <= readme_targets, (makes, readme_targets)


def test_the_ci_check_refuses_an_install_step_added_to_ci_run():
    text = (ROOT / ".ci" / "run").read_text().replace("make lint", "sudo apt-get install -y chromium\nmake lint")

    steps = ci_steps(text)[len(CI_BROKER_CHOICE) :]

    assert [step for step in steps if not re.fullmatch(r"make [a-z-]+", step)] == ["sudo apt-get install -y chromium"]
