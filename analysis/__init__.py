"""Reading tracked runs back from MLflow into pandas, and drawing the figures of a report."""
