"""The lab's censor and central element at the console, the same commands under every design
(``Lab``: each design's operator acts with its own instruments, as the censorship experiment
does):

    act person h9            act destination news.abroad.example      act undo person
    act name SITE            act region north     act country         act throttle SITE
    records h9               central down         central up

A target left out is the experiments' choice (``experiments.subjects``).
"""

from __future__ import annotations

from experiments.lab import Lab
from protocols import architectures

REFUSED = object()  # what _try gives for an action refused


class InstrumentCommands:
    """A mixin of the lab's CLI (``console.SplinterCLI``): needs ``lab``."""

    lab: Lab

    def _try(self, what, *args):
        """Carry out one of the lab's actions; a refusal (the lab's or the design's) is one
        line, not the end of the console, and ``REFUSED``."""
        try:
            return what(*args)
        except Exception as e:  # noqa: BLE001 - any design's refusal, said and survived
            print(f"*** {e}")
            return REFUSED

    def do_act(self, line: str) -> None:
        """act ACTION [TARGET] | act undo ACTION: the operator cuts off a person (HOST), a
        destination or a name (SITE), a region, the country, or slows a destination
        (throttle SITE), with this design's instruments; undo takes it back."""
        words, lab = line.split(), self.lab
        actions = self._try(lambda: lab.actions)
        if actions is REFUSED:
            return
        if len(words) == 2 and words[0] == "undo" and words[1] in lab.acted:
            if self._try(lab.undo, words[1]) is not REFUSED:
                print(f"  {words[1]}: undone")
            return
        if not words or words[0] not in actions or len(words) > 2 or words[0] in lab.acted:
            print(f"usage: act {'|'.join(actions)} [TARGET] | act undo ACTION   (in force: "
                  f"{', '.join(lab.acted) or 'nothing'})")
            return
        took = self._try(lab.act, *words)
        if took is not REFUSED:
            print(f"  {words[0]}: in force after {took:.0f} ms")

    def do_records(self, line: str) -> None:
        """records HOST: the destinations the operator's own records tie to HOST since the
        lab started."""
        host = line.strip()
        if host not in self.lab.hosts:
            print("usage: records HOST")
            return
        found = self._try(self.lab.records, host)
        if found is not REFUSED:
            print(f"  {host}: {', '.join(found) or 'nothing on record'}")

    def do_central(self, line: str) -> None:
        """central down|up: this design's central element (the authority, the regulator)
        fails or comes back."""
        central = architectures.design(self.lab.architecture.name).central
        word = line.strip()
        if not central or word not in ("down", "up"):
            print("usage: central down|up" if central else "*** this design has no central "
                  "element")
            return
        if self._try(self.lab.central, word == "up") is not REFUSED:
            print(f"  the {central} is {word}")
