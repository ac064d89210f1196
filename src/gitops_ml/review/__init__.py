"""Pull-request review: the report, the gates and the charts."""
