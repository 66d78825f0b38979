"""README blocks of the results at scale: the study over a dozen ISP graphs, the planet by the
graph model, and the IoT sweep with its projection."""

from __future__ import annotations

import statistics

from experiments.comparisons import blast_radius as blast
from experiments.publish.blocks_bench import ADMISSION
from experiments.publish.published import Published, held, ms, pct, spaced, span
from protocols.architectures import ADMITTING, BASELINE, compared, design
from topologies.graph import attachment, authority_site

ANSWER_SLACK_MS = 5  # the gateway's target: a question answered within the round trip and this

STUDY = "study/blast-radius"
DISCONNECT_NAMED = ("US", "DE", "FR", "GB", "RU", "CN", "IN")
PER_COUNTRY_NAMED = ("CN", "IN")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _failure(record: dict) -> tuple[str, str]:
    return record["failure"]["kind"], str(record["failure"]["target"])


def _share(record: dict) -> float:
    return len(record["pairs_lost_new"]) / record["pairs_total"]


def study(pub: Published) -> dict:
    graphs = sorted(p.name for p in (pub.root / STUDY).iterdir() if p.is_dir())
    rels = [f"{STUDY}/{g}" for g in graphs]
    others = [d for d in compared() if d not in (BASELINE, ADMITTING)]
    worst_p, worst_r, extra, outage, odd = [], [], [], [], []
    same = dict.fromkeys(others, 0)
    failures = agree = 0
    for graph, rel in zip(graphs, rels, strict=True):
        records = pub.summary(rel)["records"]
        g = pub.topology(rel)
        single = [r for r in records if r["failure"]["kind"] in ("router", "link")]
        by = {a: [r for r in single if r["arch"] == a] for a in compared()}
        worst_p.append(max(map(_share, by[BASELINE])))
        worst = max(by[ADMITTING], key=_share)
        if worst["failure"]["target"] == attachment(g, authority_site(g)):
            worst_r.append(_share(worst))
        else:  # said by name: the authority's router is the rule, this graph the exception
            model = len(blast.model_pairs(worst, "new")) / worst["pairs_total"]
            odd.append(f"{graph}, {worst['failure']['kind']} {worst['failure']['target']}: "
                       f"{pct(_share(worst))}, where the model says {pct(model)}")
        extra.append(statistics.fmean(map(_share, by[ADMITTING])) -
                     statistics.fmean(map(_share, by[BASELINE])))
        lost = {_failure(r): r["pairs_lost_new"] for r in by[BASELINE]}
        for d in others:  # failure by failure, the same pairs as permissionless IP
            same[d] += bool(by[d]) and all(lost.get(_failure(r)) == r["pairs_lost_new"]
                                           for r in by[d])
        outage += [_share(r) for r in records if r["failure"]["kind"] == "authority"]
        failures += len(records)
        agree += sum(all(blast.model_pairs(r, k) == r[f"pairs_lost_{k}"]
                         for k in ("new", "existing")) for r in records)
    n = len(rels)
    return {"source": pub.source(*rels), "graphs": n,
            "worst_p": span(worst_p, pct), "worst_r": span(worst_r, pct),
            "authority_worst": "every graph" if not odd else f"{n - len(odd)} of {n} graphs",
            "odd": "" if not odd else " The exception" + ("s" if len(odd) > 1 else "") +
                   ": " + "; ".join(odd) + ".",
            "others": " ".join(
                f"{_capitalised(design(d).label)}: every router or link failure cuts exactly "
                f"the pairs it cuts under {design(BASELINE).label}, on "
                f"{'every graph' if k == n else f'{k} of {n} graphs'}." for d, k in same.items()),
            "extra": span(extra, lambda v: f"{100 * v:.0f}"), "outage": span(outage, pct),
            "minutes": f"{pub.minutes(*rels):.0f} min", "failures": spaced(failures),
            "agree": "every measured pair set, of new and of existing connections, is the "
                     "model's" if agree == failures else
                     f"{spaced(agree)} of {spaced(failures)} failures' pair sets are the model's"}


def _country(pub: Published, rel: str, code: str) -> dict:
    return next(r for r in pub.rows(rel, "disconnect") if r["country"] == code)


def planet(pub: Published) -> dict:
    rel = "planet/world"
    s = pub.summary(rel)
    o = s["overhead_ms"]
    glob = s["placements"]["global"][0]
    fails = s["authority_failures"]["continent"]
    region = {p["site"]: p["region"] for p in s["placements"]["continent"]}
    cut = s["cable_cuts"]["worst"][BASELINE]
    cut_off = {c: _country(pub, rel, c) for c in DISCONNECT_NAMED}
    names = {"US": "the United States", "DE": "Germany", "FR": "France", "GB": "Britain",
             "RU": "Russia", "CN": "China", "IN": "India"}
    others = max(pub.rows(rel, "disconnect"), key=lambda r: float(
        r[f"{BASELINE}_others_lost"]) if r["authority_inside"] != "True" else -1)
    return {
        "source": pub.source(rel), "seconds": f"{pub.minutes(rel) * 60:.0f} s",
        "nodes": ", ".join(f"{spaced(n)} {_plural(kind.lower())}" for kind, n in
                           s["graph"]["nodes"].items()),
        "links": spaced(s["graph"]["links"]), "processing": ms(
            s["assumptions"]["processing_ms"], 2),
        "global_site": f"{glob['name']}, {glob['country']}",
        "global": f"{o['global']['p50']:.1f} ms in the median and {o['global']['p95']:.1f} ms "
                  f"at the 95th percentile of cities, {o['global']['max']:.0f} ms at worst",
        "continent": f"{o['continent']['p50']:.1f} / {o['continent']['p95']:.1f} ms",
        "countries": spaced(len(s["placements"]["country"])),
        "country": f"{o['country']['p50']:.1f} / {o['country']['p95']:.1f} ms",
        "country_own": f"{o['country_own']['p95']:.1f} ms",
        "sites_needed": ", ".join(f"{n} under {float(t):g} ms" for t, n in
                                  sorted(s["sites_needed"].items(), key=lambda kv:
                                         -float(kv[0]))),
        "continent_down": f"{region.get(fails['no_failover']['site'], '?')}'s site "
                          f"({fails['no_failover']['name']}, "
                          f"{spaced(fails['no_failover']['cities_served'])} cities) takes "
                          f"{pct(fails['no_failover']['lost'], 1)} of pairs down with it",
        "failover": f"{fails['failover']['failover_p95_ms']:.0f} ms "
                    f"({region.get(fails['failover']['site'], '?')}'s site down)",
        "cuts": spaced(s["cable_cuts"]["evaluated"]), "bridges": spaced(s["cable_cuts"][
            "bridges"]),
        "worst_cut": f"{pct(cut['lost'], 1)} of pairs ({cut['a']}-{cut['b']}, "
                     f"{cut['km']:.0f} km)",
        "disconnect_p": ", ".join(
            f"{names[c]} {pct(float(r[f'{BASELINE}_domestic_kept']))}" for c, r in cut_off.items()),
        "disconnect_country": ", ".join(
            f"{names[c]} {pct(float(cut_off[c][f'{ADMITTING}_country_domestic_kept']))}"
            for c in PER_COUNTRY_NAMED),
        "others_most": f"{pct(float(others[f'{BASELINE}_others_lost']), 1)} of other "
                       f"countries' pairs, {others['country']}",
        "global_country": s["disconnect"]["global_authority_country"],
    }


def _step(steps: list[dict], **match) -> dict | None:
    return next((r for r in steps if all(r.get(k) == v for k, v in match.items())), None)


def _by(steps: list[dict], arch: str, key: str, devices=None) -> list[float]:
    return [r[key] for r in steps if r["arch"] == arch and r.get(key) is not None and
            (devices is None or r["devices"] == devices)]


def iot(pub: Published) -> dict:
    full, burst = "iot/full", "iot/burst"
    s, b = pub.summary(full), pub.summary(burst)
    steps, bsteps = s["steps"], b["steps"]
    largest = max(r["devices"] for r in steps)
    reg = [r for r in steps if r["arch"] == ADMITTING]
    p = s["projection"]
    lost_full = {int(r["ttl_ms"]): int(r["first_lost"]) for r in reg
                 if r["devices"] == largest}
    lost_burst = {(int(r["devices"]), int(r["ttl_ms"])): int(r["first_lost"])
                  for r in bsteps if r["arch"] == ADMITTING}
    short = min(lost_full)
    at_short = _step(steps, arch=ADMITTING, devices=largest, ttl_ms=short) or {}
    eras = p["eras"] if p else {}
    costs = _costs(pub.summary(ADMISSION))
    return {
        "source": pub.source(full, burst, ADMISSION),
        "minutes_full": f"{pub.minutes(full):.0f} min", "minutes_burst":
        f"{pub.minutes(burst):.0f} min", "largest": spaced(largest),
        "p_first": span(_by(steps, BASELINE, "first_p50_ms"), ms),
        "r_first_small": span([r["first_p50_ms"] for r in reg if r["devices"] < largest and
                               r["first_p50_ms"] is not None], ms),
        "r_first_largest": span(_by(steps, ADMITTING, "first_p50_ms", largest), ms),
        "r_first_p99_largest": span(_by(steps, ADMITTING, "first_p99_ms", largest), ms),
        "lost_full": ", ".join(f"{spaced(n)} with a {_ttl(t)} TTL" for t, n in
                               sorted(lost_full.items())),
        "lost_burst": ", ".join(f"{spaced(n)} at {spaced(d)} devices and {_ttl(t)}" for (d, t),
                                n in sorted(lost_burst.items())),
        "wrong": spaced(sum(int(r["wrong_source"] or 0) for r in steps + bsteps)),
        "drops": spaced(sum(int(r.get("nfqueue_drops") or 0) for r in steps + bsteps)),
        "per_device_short": f"{at_short.get('decisions_per_device_s') or 0:.3f}",
        "short": _ttl(short),
        "cpu_short": pct(at_short.get("cpu_share"), 1),
        "per_cpu": spaced(p["decisions_per_cpu_s"]) if p else "n/a",
        "log_short": _range_kb(reg, short, largest), "record_bytes": _record_bytes(reg),
        "eras": _eras_table(eras, costs),
        "per_cpu_compiled": spaced(costs[0]), "per_cpu_bare": spaced(costs[1]),
        "beyond": ", ".join(f"{spaced(e['beyond_measured'])}" for e in eras.values()),
        "not_projected": ", ".join(_ttl(t) for t in p["not_projected"]) if p else "n/a",
        "answers_burst": _answers_table([r for r in bsteps if r["arch"] == ADMITTING]),
    }


def _answers_table(reg: list[dict]) -> str:
    """Per burst step: how long a question waited for its answer at the farm's gateway,
    against the round trip to the authority at rest (the target: within it plus 5 ms)."""
    lines = ["| devices | TTL | ask-to-answer p50 | p99 | round trip at rest | p99 within it "
             "+ 5 ms | gateway busy |", "|---|---|---|---|---|---|---|"]
    for r in reg:
        rtt, p99 = r.get("authority_rtt_ms"), r.get("answer_p99_ms")
        within = "n/a" if rtt is None or p99 is None else held(p99 <= rtt + ANSWER_SLACK_MS)
        lines.append(f"| {spaced(r['devices'])} | {_ttl(int(r['ttl_ms']))} | "
                     f"{ms(r.get('answer_p50_ms'))} | {ms(p99)} | {ms(rtt)} | {within} | "
                     f"{pct(r.get('gateway_cpu_share'))} of a core |")
    return "\n".join(lines)


def _costs(admission: dict) -> tuple[float, float]:
    """Decisions per CPU second where a decision costs least: the compiled authority at
    saturation (``bench admission``'s flood) and the bare limit (C: one HMAC verify, one
    lookup and one HMAC sign a decision)."""
    return (admission["compiled"]["flood"]["decisions_per_cpu_s"],
            admission["bare_limit"]["per_cpu_second"])


def _eras_table(eras: dict, costs: tuple[float, float]) -> str:
    """One row per published count of the world's IoT and TTL: what the authority would
    need, its cores a range from this run's cost per decision to the bare limit's."""
    lines = ["| devices (source) | TTL | decisions/s | authority cores: at this run's cost / "
             "compiled, saturated / bare limit | admission log a day |", "|---|---|---|---|---|"]
    for e in eras.values():
        for t, v in sorted(e["by_ttl"].items(), key=lambda kv: int(kv[0])):
            cores = " / ".join(spaced(c) for c in (
                v["authority_cores"], *(v["decisions_per_s"] / per_cpu for per_cpu in costs)))
            lines.append(f"| {e['devices'] / 1e9:g} billion ({e['label']}) | {_ttl(int(t))} | "
                         f"{spaced(v['decisions_per_s'] / 1e6)} million | {cores} | "
                         f"{spaced(v['log_tb_per_day'])} TB |")
    return "\n".join(lines)


def _ttl(ms_: int) -> str:
    return f"{ms_ / 1000:g} s" if ms_ < 60_000 else f"{ms_ / 60_000:g} min" \
        if ms_ < 3_600_000 else f"{ms_ / 3_600_000:g} h"


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _record_bytes(reg: list[dict]) -> str:
    """The journal's bytes per decision, as the runs saw the log grow (not the code's
    constant: the results may be of another commit)."""
    sizes = [r["log_bytes_steady"] / r["decisions_steady"] for r in reg
             if r.get("decisions_steady") and r.get("log_bytes_steady")]
    return f"{statistics.median(sizes):.0f}" if sizes else "n/a"


def _range_kb(reg: list[dict], ttl: int, devices) -> str:
    values = [r["log_bytes_per_device_day"] / 1000 for r in reg if r["ttl_ms"] == ttl and
              r.get("log_bytes_per_device_day") and r.get("renewals_observed")]
    return span(values, lambda v: f"{v:.0f} kB") if values else "n/a"
