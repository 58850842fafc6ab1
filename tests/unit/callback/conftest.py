"""Makes the callback-step fixtures available to every test in this folder."""

from callback_support import (  # noqa: F401 - pytest finds fixtures by name
    aws_environment,
    ecs,
    glue,
    import_handler,
    lambda_context,
    logs,
    retrier,
    sagemaker,
    sleep,
)
