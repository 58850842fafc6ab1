"""`make local ARGS="--approval prompt"`: the run prints the mailed links and waits until a person decides.

The test is that person: it reads the printed link, opens it (GET, which changes nothing), and presses
Approve on the page (POST of the page's own form), all through the real HTTP endpoint on 127.0.0.1.
"""

from __future__ import annotations

import io
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from local_mode.main import EXIT_OK, RunResult, parse_args, run
from local_mode.progress import Progress

pytestmark = pytest.mark.e2e

LINK = re.compile(r"approve: (http://127\.0\.0\.1:\d+/a/[A-Za-z0-9_-]{43}\?decision=approve)")
REJECT_LINK = re.compile(r"reject:  (http://127\.0\.0\.1:\d+/a/[A-Za-z0-9_-]{43}\?decision=reject)")
# Reaching ApproveResults takes the prep job, training, scoring and evaluation on local Spark.
SECONDS_TO_THE_LINK = 300
SECONDS_TO_FINISH = 120


class Console(io.TextIOBase):
    """What the run prints, readable by the test while the run goes on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: list[str] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._text.append(text)
        return len(text)

    def text(self) -> str:
        with self._lock:
            return "".join(self._text)

    def wait_for(self, pattern: re.Pattern[str], seconds: float, run_ended: threading.Event) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not run_ended.is_set():
            found = pattern.search(self.text())
            if found:
                return found.group(1)
            time.sleep(0.2)
        found = pattern.search(self.text())
        return found.group(1) if found else None


class FormFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.buttons: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden":
            self.hidden[str(values["name"])] = str(values.get("value") or "")
        if tag == "button":
            self.buttons.append(str(values.get("value")))


def post(link: str, fields: dict[str, str]) -> tuple[int, str]:
    parts = urllib.parse.urlsplit(link)
    origin = f"{parts.scheme}://{parts.netloc}"
    request = urllib.request.Request(  # noqa: S310 - the loopback endpoint
        f"{origin}{parts.path}",
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": origin},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the loopback endpoint
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_prompt_mode_prints_the_link_and_waits_for_a_person_who_approves_on_the_page(tmp_path: Path) -> None:
    # Given `make local ARGS="--approval prompt"` (pipeline only, a small month, --quiet: the link still shows)
    argv = ["--approval", "prompt", "--only", "pipeline", "--trips", "20000", "--no-charts", "--quiet"]
    args = parse_args([*argv, "--out", str(tmp_path)])
    console = Console()
    results: list[RunResult] = []
    ended = threading.Event()

    def run_local_mode() -> None:
        try:
            results.append(run(args, progress=Progress(console, quiet=args.quiet)))
        finally:
            ended.set()

    runner = threading.Thread(target=run_local_mode, name="local-mode-prompt", daemon=True)
    runner.start()
    link = None
    try:
        # When the run prints the approve link
        link = console.wait_for(LINK, SECONDS_TO_THE_LINK, ended)
        assert link is not None, f"no approve link printed; the run printed:\n{console.text()[-3000:]}"
        # ...it waits: nothing has decided for the person
        time.sleep(1.0)
        assert not ended.is_set(), "the run did not wait for the decision"

        # And the person opens it (GET shows the details and two buttons, and changes nothing)
        for _ in range(2):
            with urllib.request.urlopen(link, timeout=10) as page:  # noqa: S310 - the loopback endpoint
                assert page.status == 200
                html = page.read().decode()
        form = FormFields()
        form.feed(html)
        assert form.buttons == ["approve", "reject"] and "form_token" in form.hidden
        assert "Windows scored" in html

        # And presses Approve (the page's form, POSTed to the same origin)
        status, answer = post(
            link, {**form.hidden, "decision": "approve", "approver": "pat@example.com", "comment": "looks right"}
        )
        assert status == 200, answer
        assert "Approved" in answer

        # Then the run finishes on its own: approved by that person, and the model is registered
        ended.wait(SECONDS_TO_FINISH)
        assert ended.is_set(), "the run did not finish after the approval"
    finally:
        if not ended.is_set():
            # Never leave the run waiting behind the test: reject through the page, which ends it.
            reject = console.wait_for(REJECT_LINK, 0, ended)
            if reject is not None:
                with urllib.request.urlopen(reject, timeout=10) as page:  # noqa: S310 - the loopback endpoint
                    form = FormFields()
                    form.feed(page.read().decode())
                post(reject, {**form.hidden, "decision": "reject", "approver": "test", "comment": "test cleanup"})
                ended.wait(SECONDS_TO_FINISH)

    (result,) = results
    assert result.exit_code == EXIT_OK, result.summary
    assert result.pipeline is not None
    statuses = {step.name: step.status for step in result.pipeline.execution.steps}
    assert statuses["ApproveResults"] == "Succeeded" and statuses["Register"] == "Succeeded"
    (package,) = result.pipeline.model_packages
    assert "pat@example.com" in str(package)
    # The prompt printed both links, even with --quiet, and the mail went to out/
    assert REJECT_LINK.search(console.text())
    assert link in (tmp_path / "approval" / "approval-mail.txt").read_text(encoding="utf-8")
