"""The one error type for bad configuration or input that a program reports as one line and exit status 2."""


class ConfigurationError(ValueError):
    """Parameters, configuration files or inputs do not validate; the message names the offending value."""
