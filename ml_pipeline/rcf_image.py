"""The built-in Random Cut Forest container image for a region, resolved without network.

The registry account per region comes from the SageMaker SDK's own bundled table
(`sagemaker/core/image_uri_config/randomcutforest.json`, shipped by sagemaker-core) and the
ECR hostname from botocore's bundled endpoint data, the same two sources
`sagemaker.core.image_uris.retrieve` uses. The JSON file is read directly instead of calling
`retrieve` so this module never imports the (slow, side-effecting) SDK packages.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

RCF_REPOSITORY = "randomcutforest"
RCF_IMAGE_TAG = "1"
_CONFIG_RELATIVE_PATH = Path("core", "image_uri_config", "randomcutforest.json")


def rcf_image_uri(region: str) -> str:
    """`<account>.dkr.ecr.<region>.<dns suffix>/randomcutforest:1` for `region`.

    Raises ValueError naming the supported regions when RCF is not offered in `region`.
    """
    registries = _rcf_registries()
    account = registries.get(region)
    if account is None:
        raise ValueError(
            f"Random Cut Forest is not available in region {region!r}; "
            f"supported regions: {', '.join(sorted(registries))}"
        )
    return f"{account}.dkr.{_ecr_hostname(region)}/{RCF_REPOSITORY}:{RCF_IMAGE_TAG}"


def supported_regions() -> tuple[str, ...]:
    return tuple(sorted(_rcf_registries()))


@functools.cache
def _rcf_registries() -> dict[str, str]:
    config = json.loads(_bundled_config_path().read_text(encoding="utf-8"))
    registries: dict[str, str] = config["versions"][RCF_IMAGE_TAG]["registries"]
    return registries


def _bundled_config_path() -> Path:
    # `sagemaker` is a namespace package, so finding it imports nothing heavy.
    spec = importlib.util.find_spec("sagemaker")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / _CONFIG_RELATIVE_PATH
        if candidate.is_file():
            return candidate
    raise RuntimeError(f"sagemaker-core's bundled {_CONFIG_RELATIVE_PATH} was not found; is sagemaker-core installed?")


@functools.cache
def _ecr_hostname(region: str) -> str:
    import botocore.loaders
    import botocore.regions

    resolver = botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))
    endpoint = resolver.construct_endpoint("ecr", region)
    if endpoint and endpoint.get("hostname"):
        return str(endpoint["hostname"])
    # Regions newer than the installed botocore (the SDK has the same fallback for il-central-1).
    return f"ecr.{region}.amazonaws.com"
