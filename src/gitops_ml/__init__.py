"""gitops-ml: a GitOps template for machine learning."""
