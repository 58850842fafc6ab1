"""The SageMaker scikit-learn container image the Evaluate processing step runs in, resolved without network.

The evaluation job needs Python 3.11+ and numpy, nothing else: the `1.4-2-py312` scikit-learn image
(Python 3.12, numpy, pandas) is the smallest AWS-maintained image with both. Like `rcf_image`, the
registry account per region comes from the SageMaker SDK's bundled table
(`sagemaker/core/image_uri_config/sklearn.json`, the source `image_uris.retrieve` reads), and the tag
is the one `image_uris.retrieve("sklearn", region, version="1.4-2-py312", py_version="py3")` returns.
"""

from __future__ import annotations

import functools
import json

from ml_pipeline.rcf_image import _bundled_config_path, _ecr_hostname

SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
SKLEARN_VERSION = "1.4-2-py312"
SKLEARN_IMAGE_TAG = f"{SKLEARN_VERSION}-cpu-py3"


def evaluation_image_uri(region: str) -> str:
    """`<account>.dkr.ecr.<region>.<dns suffix>/sagemaker-scikit-learn:1.4-2-py312-cpu-py3`."""
    registries = _sklearn_registries()
    account = registries.get(region)
    if account is None:
        raise ValueError(
            f"the SageMaker scikit-learn image {SKLEARN_VERSION} (the Evaluate step) is not available in region "
            f"{region!r}; supported regions: {', '.join(sorted(registries))}"
        )
    return f"{account}.dkr.{_ecr_hostname(region)}/{SKLEARN_REPOSITORY}:{SKLEARN_IMAGE_TAG}"


def evaluation_image_account(region: str) -> str:
    return evaluation_image_uri(region).split(".", 1)[0]


@functools.cache
def _sklearn_registries() -> dict[str, str]:
    path = _bundled_config_path().parent / "sklearn.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    registries: dict[str, str] = config["training"]["versions"][SKLEARN_VERSION]["registries"]
    return registries
