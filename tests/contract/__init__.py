"""The JSON contract: docs/schemas/ against the code's types, real output and test fixtures."""
