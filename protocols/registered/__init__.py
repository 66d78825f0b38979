"""Registered access: identities proven with the civil register's cards, an authority that
admits or denies every flow, gateways that enforce it both ways, policy kept in order.

    messages     the protocol's vocabulary (IntEnums shared by wire and codec; no scapy)
    wire         the wire format, as scapy layers (the definition)
    codec        the same bytes for the daemons: struct, HMAC, sessions, replay defence
    identity     cards and challenge-response proofs
    admission    decide a flow (pure), and the one admission-row type
    policy       each gateway's share of the policy; ordered changes and snapshots
    journal      the framed, crash-safe admission journal
    registry     SQLite: civil register, identities, bindings, policy, changes, logs
    ops          the operator's commands, a table of small handlers
    authority    the authority daemon
    budget       every host's questions, on a budget
    ruleset      the gateway's nftables table
    gateway      the gateway daemon: its loop and what the authority says; its other jobs in
                 gateway_flows (naming flows, set elements), gateway_admission (first packets,
                 renewals), gateway_nft (the element writer), gateway_policy (policy in
                 order), gateway_hosts (the hosts' registration service)
    hostclient   a host proving who it is
    records      what a run keeps: the registry without secrets, the admission log as CSV
    operator     the operator's client API
    architecture the architecture: civil register, daemons, hosts registering, records

Kept empty on purpose: daemons import single modules and must not pay for the rest.
"""
