"""Feature, data preparation, training and evaluation code of the iris demo."""
