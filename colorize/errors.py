"""User-facing errors: raised for bad input, printed as one line by the entrypoints."""


class ColorizeError(Exception):
    """A problem with the user's input (config, data, checkpoint) that the user can fix."""


class DataError(ColorizeError):
    """A data folder or image file that cannot be used."""


def invalid(key: str, value: object, allowed: str) -> ColorizeError:
    """The one error message format for an out-of-range setting."""
    return ColorizeError(f"{key}={value!r} is invalid: {allowed}")
