"""The Glue streaming job's control: the deploy-time custom resource and the supervisor that keeps it running."""
