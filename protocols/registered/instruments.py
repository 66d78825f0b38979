"""Registered access's censor (``protocols.instruments.Instruments``): the authority's
operator commands. A person is revoked by identity, destinations and names are blocked by
their addresses, a region is shut down but for the essential services, the country is every
foreign prefix blocked; the records are the admission log, by identity."""

from __future__ import annotations

from topologies.addressing import FOREIGN


class AuthorityInstruments:
    lies_about_names = False
    identity_evasions = True
    can_throttle = False  # the authority admits or denies; nothing in between

    def __init__(self, arch, net, services):
        self.arch, self.net, self.services = arch, net, services

    def act(self, action: str, aim) -> None:
        op = self.arch.operator
        if action == "person":
            op.revoke(self.arch.identity(aim.person))
        elif action in ("destination", "name"):
            site = aim.destination if action == "destination" else aim.name
            for address in self.services.records[site]:
                op.block(f"{address}/32")
        elif action == "region":
            op.shutdown(aim.region, [f"{self.net.address(n)}/32" for n in aim.essential])
        else:
            for prefix in FOREIGN:
                op.block(str(prefix))

    def undo(self, action: str, aim) -> None:
        op = self.arch.operator
        if action == "person":  # by the identity the person's first address was bound to
            op.reinstate(self.arch.identity(aim.person) or op.who(
                address=str(self.net.plan.address(aim.person)))["identity"])
        else:
            op.restore()

    def records(self, host: str, since: float) -> set[str]:
        rows = self.arch.operator.log(limit=5000, identity=self.arch.identity(host),
                                      since=since)["admissions"]
        return {r["dst"] if not r["inbound"] else r["src"] for r in rows}

    def reregister(self, host: str) -> bool:
        return not self.arch.register(host)  # '' when registered

    def borrow(self, host: str) -> bool:
        self.lender = self.arch.spares[0]
        card = self.arch.lend_card(self.lender, host)
        return not (self.arch.register(host, card) and self.arch.bind(host, card))

    def blame(self, host: str, since: float) -> dict:
        op = self.arch.operator
        rows = op.log(limit=100, identity=self.arch.identity(host), since=since)["admissions"]
        return {"person_who_acted": self.arch.cards[host].national_id,
                "card_owner": self.lender.national_id,
                "log_names": sorted({op.who(identity=r["identity"])["national_id"]
                                     for r in rows})}

    def moved(self, host: str) -> None:
        """The host's identity is bound to its new address (as its client does after a
        DHCP change)."""
        self.arch.bind(host)
