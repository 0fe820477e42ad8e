"""Small, hand-checkable result-store folders for the analysis tests."""
