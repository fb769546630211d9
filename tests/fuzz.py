"""The settings of the property-based tests: few examples, always the same ones (the suite
stays fast and its results reproducible), no example database written to disk."""

from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
