"""The architectures under comparison and their parts (see ``protocols.architectures``).

Kept empty on purpose: daemons import single modules of this package (the codec, the
gateway, the authority) and must not pay for importing every architecture and its graphs.
"""
