"""Local mode: the whole system on one machine with no AWS account, running the same code as AWS.

`python -m local_mode` (or `make local`) runs the ML pipeline (the registered SageMaker pipeline
definition, interpreted step by step) and the streaming system (generator -> streaming ETL ->
detector) and writes scored windows, interval CSVs, anomaly records and charts under `out/`.
"""
