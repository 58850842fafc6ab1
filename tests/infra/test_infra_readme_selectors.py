"""The README's stack-selector table is what `cdk deploy <selector>` matches: each stack's construct ID."""

from __future__ import annotations

import re
from pathlib import Path

from infra_synth import Synthesized

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_lists_every_stacks_selector_and_name(dev: Synthesized) -> None:
    # Given the table under "Stack selectors": | `Storage` | `taxi-anomaly-<env>-storage` |
    table = dict(re.findall(r"^\| `([A-Za-z]+)` \| `(taxi-anomaly-<env>-[a-z-]+)` \|$", README, flags=re.MULTILINE))

    # Then it has one row per stack: the ID the CLI selects by, and the stack's CloudFormation name
    actual = {stack.node.id: stack.stack_name.replace("-dev-", "-<env>-", 1) for stack in dev.all_stacks()}
    assert table == actual
