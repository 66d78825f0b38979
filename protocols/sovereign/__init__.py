"""IP under national control: the permissionless network with what states add to it today.

    rules        the regulator's rule set, and what a box compiles of it (nftables, iptables)
    regulator    the daemon that pushes the rule set to every box
    box          an inspection box on an access or border router; flow export
    subscribers  the ISP's real-name register and address leases (SQLite)
    instruments  the censor's actions in this design
    architecture the architecture: boxes, regulator, register, bring-up

Kept empty on purpose: daemons import single modules.
"""
