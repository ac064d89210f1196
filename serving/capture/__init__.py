"""Production data capture: what the server logged, shipped to object storage for the drift
check. `writer` (the server's prediction-log writer and its sinks), `codec` (lines and request
records), `segments` (the spool the server writes), `shipper` (expands and uploads segments),
`python -m serving.capture` (the sidecar). Nothing here is imported unless a prediction log or
capture is configured; only the shipper needs the `capture` extra (fsspec, s3fs, tenacity).
"""
