"""Makes the approval fixtures available to every test in this folder."""

from approval_support import dynamodb_server, retrier, sagemaker, store  # noqa: F401 - pytest finds fixtures by name
