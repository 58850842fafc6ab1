"""The built-in Random Cut Forest image is resolved per region, offline."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pipeline_support import REPO_ROOT

from ml_pipeline.rcf_image import rcf_image_uri, supported_regions


@pytest.mark.parametrize(
    ("region", "expected_image"),
    [
        ("us-east-1", "382416733822.dkr.ecr.us-east-1.amazonaws.com/randomcutforest:1"),
        ("eu-west-1", "438346466558.dkr.ecr.eu-west-1.amazonaws.com/randomcutforest:1"),
        # Other partitions: a different DNS suffix (China) and account (GovCloud).
        ("cn-north-1", "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/randomcutforest:1"),
        ("us-gov-west-1", "226302683700.dkr.ecr.us-gov-west-1.amazonaws.com/randomcutforest:1"),
    ],
)
def test_image_uses_the_regions_registry_account_and_ecr_domain(region: str, expected_image: str) -> None:
    # Given a region where SageMaker offers Random Cut Forest
    # When resolving the image
    image = rcf_image_uri(region)

    # Then it is that region's registry account, ECR hostname and the RCF repository
    assert image == expected_image


def test_region_without_rcf_is_rejected_with_the_supported_regions() -> None:
    # Given a region that has no Random Cut Forest registry
    region = "xx-nowhere-1"

    # When resolving the image
    with pytest.raises(ValueError, match="not available in region 'xx-nowhere-1'") as raised:
        rcf_image_uri(region)

    # Then the message lists where it is available
    assert "us-east-1" in str(raised.value)
    assert "eu-west-1" in str(raised.value)


def test_supported_regions_come_from_the_sdk_table() -> None:
    # Given the SDK's bundled table
    # When listing the supported regions
    regions = supported_regions()

    # Then the commercial, China and GovCloud regions are all there, sorted
    assert {"us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"} <= set(regions)
    assert list(regions) == sorted(regions)


def test_resolving_the_image_and_importing_the_package_do_not_load_the_sagemaker_sdk() -> None:
    # Given a fresh interpreter (the SDK takes seconds to import and has import-time side effects)
    script = (
        "import sys, ml_pipeline\n"
        "from ml_pipeline.rcf_image import rcf_image_uri\n"
        "rcf_image_uri('us-east-1')\n"
        "print(sorted(name for name in sys.modules if name.startswith('sagemaker.')))\n"
    )

    # When importing ml_pipeline and resolving an image
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT)

    # Then no SageMaker SDK module was imported
    assert result.stdout.strip() == "[]"
