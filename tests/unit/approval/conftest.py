"""Makes the approval fixtures available to every test in this folder."""

from approval_support import (  # noqa: F401 - pytest finds fixtures by name
    botocore_does_not_really_sleep,
    dynamodb_server,
    mailbox,
    retrier,
    s3,
    sagemaker,
    store,
)
