"""Production data capture: the predictions the server made, shipped to object storage for the
drift check. Imported only when capture is configured (docs/monitoring.md, "In the pod").
"""
