"""How hosts see the network: probes run from the controlling process, the long-lived
prober inside each node, and the OONI-style web probe."""
