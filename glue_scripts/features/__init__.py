"""The prep job's feature logic, shipped to Glue as a zip of this folder (``--extra-py-files``).

In Glue the zip is on the Python path, so the module imports as ``window_features``; in this repository it
is ``glue_scripts.features.window_features``.
"""
