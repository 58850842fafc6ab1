"""The Evaluate step's processing job: scored windows in, the evaluation report (a property file) out.

Runs in SageMaker's scikit-learn image (Python 3.12, numpy) as a zip Python executes directly
(`ml_pipeline.evaluation_bundle` builds it with this package and `pipeline_evaluation`).
"""
