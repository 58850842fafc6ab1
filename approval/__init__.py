"""Human approval of a pipeline run: the single-use approval requests behind the e-mail links.

Shared by the notifier, endpoint and expiry Lambdas, the operator CLI and the local mode, so it
depends on boto3/botocore only. The durable state is one DynamoDB table (see `store`).
"""
