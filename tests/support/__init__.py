"""Helpers shared by the test suites: real servers the tests start and stop themselves."""
