"""CloudFormation custom resource that starts and stops the Glue streaming job."""
