"""The one error a network raises, where every module of the network can import it."""


class NetworkError(RuntimeError):
    """The network could not be built or changed; the message is one sentence with a fix."""
