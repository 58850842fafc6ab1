"""AWS Glue job scripts: thin Glue bootstraps around pure PySpark functions."""
