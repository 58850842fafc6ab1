"""Makes the callback-step fixtures available to every test in this folder."""

from callback_support import (  # noqa: F401 - pytest finds fixtures by name
    aws_environment,
    clock,
    dynamodb,
    dynamodb_endpoint,
    ecs,
    glue,
    import_handler,
    lambda_context,
    logs,
    records,
    retrier,
    sagemaker,
    sleep,
    token_table,
)
