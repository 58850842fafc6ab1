"""A person's view: the mailed link opened in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium from PyPI with explicit paths, so nothing is downloaded), Approve pressed, step resolved."""

from __future__ import annotations

from typing import Any

import pytest
from approval_support import EXECUTION_ARN, SageMakerCallbacks, create_request

from approval.mail import approval_link
from approval.store import APPROVED, ApprovalStore
from local_mode.approval_server import LocalApprovalEndpoint

# The `browser` fixture (Debian's Chromium through Selenium, nothing downloaded) is in tests/conftest.py.
pytestmark = pytest.mark.browser


def test_a_person_opens_the_link_sees_the_details_presses_approve_and_the_step_resolves(
    browser: Any, store: ApprovalStore, sagemaker: SageMakerCallbacks
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    # Given a pending request and its mailed approve link, served by the endpoint's code
    token, reference = create_request(store, sagemaker, now=int(__import__("time").time()))
    with LocalApprovalEndpoint(store, sagemaker.client) as endpoint:
        # When the approver opens the link
        browser.get(approval_link(endpoint.url, reference, "approve"))

        # Then the page shows the run and the key figures, and nothing is decided yet
        details = browser.find_element(By.ID, "details").text
        assert EXECUTION_ARN in details and "Windows scored:  1,488" in details
        assert "observed 812 vs expected 420 passengers" in details
        assert sagemaker.outcome(token) is None
        # And the browser enforced the CSP without complaint (the inline style is allowed by its hash)
        errors = [entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"]
        assert errors == []

        # When they give their name and press Approve
        browser.find_element(By.ID, "approver").send_keys("ana@example.com")
        browser.find_element(By.ID, "comment").send_keys("matches the storm")
        browser.find_element(By.ID, "approve").click()
        WebDriverWait(browser, 15).until(expected_conditions.presence_of_element_located((By.ID, "outcome")))

        # Then the page says so, and the ApproveResults step has succeeded with their name and comment
        assert "Approved" in browser.find_element(By.ID, "outcome").text
    outcome = sagemaker.outcome(token)
    assert outcome.succeeded
    assert outcome.output_parameters == {"approved_by": "ana@example.com", "approval_comment": "matches the storm"}
    request = store.get_by_reference(reference)
    assert request is not None and request.status == APPROVED
