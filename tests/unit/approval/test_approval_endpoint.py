"""The approval page's security rules, over real HTTP against the endpoint's own code (loopback server)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from approval_expiry.logic import check_open_requests
from approval_support import EXECUTION_ARN, NOW, SageMakerCallbacks, create_request

from approval.references import new_reference
from approval.store import APPROVED, EXPIRED, PENDING, ApprovalStore
from local_mode.approval_server import LocalApprovalEndpoint
from pipeline_callback.retry import Retrier


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW + 60)


@pytest.fixture
def endpoint(store: ApprovalStore, sagemaker: SageMakerCallbacks, clock: Clock) -> Iterator[LocalApprovalEndpoint]:
    with LocalApprovalEndpoint(store, sagemaker.client, clock=clock) as served:
        yield served


def http(
    method: str, url: str, *, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Response:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 - loopback test server
    if form is not None and "Content-Type" not in (headers or {}):
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback test server
            return Response(answer.status, dict(answer.headers.items()), answer.read().decode())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers.items()), error.read().decode())


class FormFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.buttons: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden":
            self.hidden[str(values["name"])] = str(values["value"])
        if tag == "button":
            self.buttons.append(str(values["value"]))
        if tag == "script" or any(name.startswith("on") for name in values):
            self.scripts += 1


def page_form(body: str) -> FormFields:
    parser = FormFields()
    parser.feed(body)
    return parser


def post_from_page(endpoint: LocalApprovalEndpoint, reference: str, decision: str, **fields: str) -> Response:
    """What the browser sends when a button of the page is pressed: the page's hidden fields, same origin."""
    page = http("GET", f"{endpoint.url}/a/{reference}")
    form = {**page_form(page.body).hidden, "decision": decision, "approver": "ana@example.com", **fields}
    return http("POST", f"{endpoint.url}/a/{reference}", form=form, headers={"Origin": endpoint.url})


def test_get_shows_the_details_and_two_buttons_and_changes_nothing(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    # Given a pending request
    token, reference = create_request(store, sagemaker)
    before = store.get_by_reference(reference)

    # When a mail scanner fetches both links, twice
    answers = [http("GET", f"{endpoint.url}/a/{reference}?decision={d}") for d in ("approve", "reject", "approve")]

    # Then each shows the confirmation page with the run, the key figures and the top events
    for answer in answers:
        assert answer.status == 200
        assert EXECUTION_ARN in answer.body
        assert "Windows scored:  1,488" in answer.body
        assert "observed 812 vs expected 420 passengers" in answer.body
        assert page_form(answer.body).buttons == ["approve", "reject"]
        assert page_form(answer.body).scripts == 0
    # And nothing was decided or sent
    assert store.get_by_reference(reference) == before
    assert store.get_by_reference(reference).status == PENDING  # type: ignore[union-attr]
    assert sagemaker.outcome(token) is None


def test_approving_from_the_page_resolves_the_step_with_approver_and_comment(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    token, reference = create_request(store, sagemaker)

    answer = post_from_page(endpoint, reference, "approve", comment="events match the storm")

    assert answer.status == 200
    assert "Approved. The pipeline run has been told." in answer.body
    outcome = sagemaker.outcome(token)
    assert outcome.succeeded
    assert outcome.output_parameters == {"approved_by": "ana@example.com", "approval_comment": "events match the storm"}
    request = store.get_by_reference(reference)
    assert request is not None and request.status == APPROVED and request.delivered_at is not None


def test_rejecting_fails_the_step_with_the_comment_as_reason(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    token, reference = create_request(store, sagemaker)

    answer = post_from_page(endpoint, reference, "reject", comment="scores look shifted")

    assert answer.status == 200
    outcome = sagemaker.outcome(token)
    assert not outcome.succeeded
    assert outcome.failure_reason == "Rejected by ana@example.com: scores look shifted"


def test_a_reference_is_single_use(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    # Given a request already approved from its page
    token, reference = create_request(store, sagemaker)
    page = http("GET", f"{endpoint.url}/a/{reference}")
    form = {**page_form(page.body).hidden, "approver": "ana@example.com"}
    assert (
        http(
            "POST",
            f"{endpoint.url}/a/{reference}",
            form={**form, "decision": "approve"},
            headers={"Origin": endpoint.url},
        ).status
        == 200
    )

    # When the same form is posted again, with the other button
    again = http(
        "POST",
        f"{endpoint.url}/a/{reference}",
        form={**form, "decision": "reject", "approver": "bo"},
        headers={"Origin": endpoint.url},
    )

    # Then it is refused and says what happened; the step keeps its first answer
    assert again.status == 409
    assert "Already approved by ana@example.com" in again.body
    assert sagemaker.outcome(token).succeeded
    # And the link now shows the outcome instead of buttons
    assert page_form(http("GET", f"{endpoint.url}/a/{reference}").body).buttons == []


def test_two_clicks_race_and_exactly_one_wins(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    # Given the page open in two tabs (two people), one pressing Approve and one Reject at the same moment
    token, reference = create_request(store, sagemaker)
    hidden = page_form(http("GET", f"{endpoint.url}/a/{reference}").body).hidden
    start = threading.Barrier(4)
    answers: dict[str, Response] = {}

    def click(name: str, decision: str) -> None:
        start.wait()
        answers[name] = http(
            "POST",
            f"{endpoint.url}/a/{reference}",
            form={**hidden, "decision": decision, "approver": name},
            headers={"Origin": endpoint.url},
        )

    threads = [threading.Thread(target=click, args=(f"{d}-{i}", d)) for i in range(2) for d in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    # Then exactly one request won; the others were told who decided
    winners = [name for name, answer in answers.items() if answer.status == 200]
    assert len(answers) == 4 and len(winners) == 1
    assert all(
        answer.status == 409 and f"by {winners[0]}" in answer.body
        for name, answer in answers.items()
        if name != winners[0]
    )
    # And SageMaker heard one answer, the winner's
    request = store.get_by_reference(reference)
    assert request is not None and request.decided_by == winners[0]
    assert sagemaker.outcome(token).succeeded == winners[0].startswith("approve")


def test_an_expired_request_cannot_be_used_and_the_check_fails_the_step(
    endpoint: LocalApprovalEndpoint,
    store: ApprovalStore,
    sagemaker: SageMakerCallbacks,
    clock: Clock,
    retrier: Retrier,
) -> None:
    # Given a request whose 72 hours are over
    token, reference = create_request(store, sagemaker)
    hidden = page_form(http("GET", f"{endpoint.url}/a/{reference}").body).hidden
    clock.now = NOW + 72 * 3600

    # When its link is opened and its form posted
    opened = http("GET", f"{endpoint.url}/a/{reference}")
    posted = http(
        "POST",
        f"{endpoint.url}/a/{reference}",
        form={**hidden, "decision": "approve", "approver": "ana"},
        headers={"Origin": endpoint.url},
    )

    # Then both say it expired and nothing is decided
    assert opened.status == 410 and "expired" in opened.body
    assert posted.status == 410
    assert sagemaker.outcome(token) is None
    # And the scheduled check fails the step with "approval expired"
    run = check_open_requests(store, sagemaker=sagemaker.client, retrier=retrier, clock=clock)
    assert run.expired == [EXECUTION_ARN]
    assert sagemaker.outcome(token).failure_reason == "approval expired"
    assert store.get_by_reference(reference).status == EXPIRED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "path",
    ["/a/" + "x" * 43, "/a/short", "/a/../../etc/passwd", "/", "/a/", "/admin"],
    ids=["unknown", "malformed", "traversal", "root", "empty", "other"],
)
def test_forged_or_unknown_references_get_a_plain_404(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks, path: str
) -> None:
    create_request(store, sagemaker)
    for method in ("GET", "POST"):
        answer = http(
            method,
            endpoint.url + path,
            form={"decision": "approve"} if method == "POST" else None,
            headers={"Origin": endpoint.url},
        )
        assert answer.status == 404
        assert answer.body == "Not Found\n"
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_a_fresh_random_reference_is_as_unknown_as_any_other(endpoint: LocalApprovalEndpoint) -> None:
    assert http("GET", f"{endpoint.url}/a/{new_reference()}").status == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 403),  # no Origin: not a browser form post from the page
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "SELF", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "null"}, 403),  # opaque origin and no Sec-Fetch-Site: nothing says it is our page
        ({"Origin": "SELF", "Content-Type": "application/json"}, 415),
    ],
    ids=["no-origin", "foreign-origin", "cross-site", "null-cross-site", "null-only", "json"],
)
def test_only_a_form_post_from_the_page_acts(
    endpoint: LocalApprovalEndpoint,
    store: ApprovalStore,
    sagemaker: SageMakerCallbacks,
    headers: dict[str, str],
    status: int,
) -> None:
    token, reference = create_request(store, sagemaker)
    hidden = page_form(http("GET", f"{endpoint.url}/a/{reference}").body).hidden
    sent = {name: endpoint.url if value == "SELF" else value for name, value in headers.items()}

    answer = http(
        "POST", f"{endpoint.url}/a/{reference}", form={**hidden, "decision": "approve", "approver": "x"}, headers=sent
    )

    assert answer.status == status
    assert store.get_by_reference(reference).status == PENDING  # type: ignore[union-attr]
    assert sagemaker.outcome(token) is None


def test_a_post_without_the_pages_form_token_is_refused(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    token, reference = create_request(store, sagemaker)
    answer = http(
        "POST",
        f"{endpoint.url}/a/{reference}",
        form={"form_token": "guessed", "decision": "approve", "approver": "x"},
        headers={"Origin": endpoint.url},
    )
    assert answer.status == 403
    assert store.get_by_reference(reference).status == PENDING  # type: ignore[union-attr]
    assert sagemaker.outcome(token) is None


def test_every_page_sends_the_strict_security_headers(
    endpoint: LocalApprovalEndpoint, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    _, reference = create_request(store, sagemaker)
    for answer in (http("GET", f"{endpoint.url}/a/{reference}"), http("GET", f"{endpoint.url}/nothing")):
        csp = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert "unsafe-inline" not in csp and "script-src" not in csp and "default-src 'none'" in csp
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
