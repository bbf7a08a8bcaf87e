"""flowcast."""
