"""The base of every error whose message is meant for the user (no traceback shown)."""


class InspectorError(Exception):
    """A problem a line supervisor or engineer can act on; ``str(exc)`` is the whole message."""
