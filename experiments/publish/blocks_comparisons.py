"""README blocks of the three paired comparisons on isp, the same on other graphs, and the
study across a dozen: every field a figure of the published results."""

from __future__ import annotations

from experiments.comparisons import censorship_report
from experiments.comparisons import scorecard as scorecard_table
from experiments.model import reachability
from experiments.publish.published import Published, median, ms, pct, spaced, span
from experiments.publish.regenerate import SUITE
from protocols.architectures import ADMITTING, BASELINE

ISP = "isp"
OTHER_GRAPHS = ("zoo_Abilene", "zoo_sndlib_polska")


def _close(a: float, b: float, share: float = 0.05) -> bool:
    return abs(a - b) <= share * max(a, b)


def latency(pub: Published) -> dict:
    rel = f"latency/{ISP}"
    s = pub.summary(rel)
    base = {arch: {k: v["median"] for k, v in s["baseline"][arch].items()}
            for arch in (BASELINE, ADMITTING)}
    p, r = base[BASELINE], base[ADMITTING]
    near = [x for x in s["placement"] if x["placement"] == "near" and x["overhead_ms"]
            is not None]
    far = [x for x in s["placement"] if x["placement"] == "far" and x["overhead_ms"]
           is not None]
    above = [x["overhead_ms"] - x["gateway_authority_rtt_ms"] for x in near]
    above_far = [x["overhead_ms"] - x["gateway_authority_rtt_ms"] for x in far]
    loads = sorted((int(k), v["median"]) for k, v in s["load"][ADMITTING].items())
    generator = s["load_generator"]
    ttl = {int(k): v for k, v in s["ttl"][ADMITTING].items()}
    short, *longer = sorted(ttl)
    return {
        "source": pub.source(rel),
        "ping_p": ms(p["ping_rtt"], 2), "ping_r": ms(r["ping_rtt"], 2),
        "warm_p": ms(p["connect_warm"], 2), "warm_r": ms(r["connect_warm"], 2),
        "admitted_alike": "match" if _close(p["ping_rtt"], r["ping_rtt"]) else "differ",
        "first_p": ms(p["ping_first"]), "first_r": ms(r["ping_first"]),
        "rtt_span": span([x["gateway_authority_rtt_ms"] for x in near], lambda v: f"{v:.0f}"),
        "loads": ", ".join(spaced(k) for k, _ in loads if k),
        "load_idle": ms(loads[0][1]), "load_rest": ", ".join(ms(v) for k, v in loads if k),
        "load_p": ms(s["load"][BASELINE]["0"]["median"]),
        "answered": "every synthetic request was answered" if all(
            g["answered"] == g["sent"] for g in generator.values()) else
        "not every synthetic request was answered (" + ", ".join(
            f"{spaced(g['answered'])} of {spaced(g['sent'])}" for g in generator.values()) + ")",
        "above_near": ms(median(above), 2), "above_near_max": ms(max(above), 2),
        "above_far": ms(median(above_far), 2) if above_far else "n/a",
        "far_ms": f"{s['far_ms']:g}",
        "processing": ms(s.get("model_processing", {}).get("ms"), 2),
        "ttl_short": f"{short / 1000:g} s", "ttl_short_mean": ms(ttl[short]["mean"]),
        "ttl_p_mean": ms(s["ttl"][BASELINE]["any"]["mean"]),
        "ttl_longer": " or ".join(f"{t / 1000:g} s" for t in longer),
        "ttl_longer_means": " and ".join(ms(ttl[t]["mean"]) for t in longer),
    }


def _shares(records: list[dict], arch: str, kind: str) -> list[float]:
    return [len(r["pairs_lost_new"]) / r["pairs_total"] for r in records
            if r["arch"] == arch and r["failure"]["kind"] == kind]


def _worst(records: list[dict], arch: str) -> dict:
    return max((r for r in records if r["arch"] == arch), key=lambda r: len(r["pairs_lost_new"]))


def blast_radius(pub: Published) -> dict:
    rel = f"blast-radius/{ISP}"
    records = pub.summary(rel)["records"]
    meta = pub.meta(rel)
    worst = {a: _worst(records, a) for a in (BASELINE, ADMITTING)}
    authority = next(r for r in records if r["arch"] == ADMITTING and
                     r["failure"]["kind"] == "authority")
    partitions = [r for r in records if r["arch"] == ADMITTING and
                  r["failure"]["kind"] == "partition"]
    links = _shares(records, BASELINE, "link") + _shares(records, ADMITTING, "link")
    part = partitions[0] if partitions else None
    routing_alone = None
    if part is not None:  # the same cut without an authority: what the model says routing loses
        routing_alone = len(reachability.new_lost(pub.topology(rel), reachability.Failure.of(
            part["failure"]), BASELINE))
    return {
        "source": pub.source(rel),
        "links_lost": "never disconnect anyone: the core is redundant" if not any(links) else
        f"disconnect at most {pct(max(links))} of pairs",
        "worst_r": worst[ADMITTING]["failure"]["target"],
        "worst_r_share": pct(len(worst[ADMITTING]["pairs_lost_new"]) /
                             worst[ADMITTING]["pairs_total"]),
        "worst_p": worst[BASELINE]["failure"]["target"],
        "worst_p_share": pct(len(worst[BASELINE]["pairs_lost_new"]) /
                             worst[BASELINE]["pairs_total"]),
        "authority_share": pct(len(authority["pairs_lost_new"]) / authority["pairs_total"]),
        "authority_kept": pct(1 - len(authority["pairs_lost_new"]) / authority["pairs_total"]),
        "partition_region": part["failure"]["target"] if part else "n/a",
        "partition_lost": spaced(len(part["pairs_lost_new"])) if part else "n/a",
        "partition_routing": spaced(routing_alone) if routing_alone is not None else "n/a",
        "ttl": _ttl(meta),
        "failures": spaced(len(records)),
    }


def _ttl(meta: dict) -> str:
    ttl = meta.get(f"{ADMITTING}_settings", {}).get("ttl_ms")
    return "n/a" if ttl is None else f"{ttl / 1000:g} s"


def censorship(pub: Published) -> dict:
    rel = f"censorship/{ISP}"
    s = pub.summary(rel)
    rows = s.get("table") or censorship_report.table(s)
    by = {(r["arch"], r["action"]): r for r in rows}
    times = [r["time_to_effect_ms"] for (a, _), r in by.items() if a == ADMITTING
             and r["time_to_effect_ms"] is not None]
    p_person = by[(BASELINE, "person")]
    blames = next((r["borrowed_identity_blames"] for r in s["records"]
                   if r.get("borrowed_identity_blames")), None)
    return {
        "source": pub.source(rel),
        "table": censorship_report.markdown(s).split("\n\nTime to effect")[0],
        "p_person_precision": pct(p_person["precision"]),
        "p_attribution": span([r["attribution"] for (a, _), r in by.items()
                               if a == BASELINE and r["attribution"] is not None], pct),
        "r_times": span(times, lambda v: f"{v:.0f} ms") if times else "n/a",
        "r_attribution": span([r["attribution"] for (a, _), r in by.items()
                               if a == ADMITTING and r["attribution"] is not None], pct),
        "timings": max(r["time_to_effect_measured"][1] for r in rows),
        "borrowed": (f"{blames['person_who_acted']} (revoked) acted with the card of "
                     f"{blames['card_owner']}; the admission log names "
                     f"{', '.join(blames['log_names']) or 'nobody'}") if blames else
        "no borrowed identity was recorded",
    }


def scorecard(pub: Published) -> dict:
    rel = f"scorecard/{ISP}"
    return {"source": pub.source(rel, *(f"{e}/{ISP}" for e in scorecard_table.SOURCES)),
            "table": scorecard_table.markdown(pub.summary(rel))}


def any_topology(pub: Published) -> dict:
    out = {"source": pub.source(*(f"{e}/{g}" for g in OTHER_GRAPHS
                                  for e in ("latency", "blast-radius", "censorship")))}
    for g in OTHER_GRAPHS:
        rels = [f"{e}/{g}" for e in ("latency", "blast-radius", "censorship")]
        out[f"minutes_{g}"] = f"{pub.minutes(*rels):.1f} min"
    return out


def demo(pub: Published) -> dict:
    """make demo's time (the isp runs) and make test's (the test step of make results, or
    of a refresh)."""
    rels = [f"{e}/{ISP}" for e in ("latency", "blast-radius", "censorship")]
    if (pub.root / SUITE / "results.json").exists():
        t = pub.summary(SUITE)
        suite = (f"`make test` {spaced(t['tests'])} tests ({spaced(t['skipped'])} skipped, "
                 f"{spaced(t['failures'] + t['errors'])} failed) in {t['seconds'] / 60:.0f} min "
                 "(its run in `make results`)")
        rels.append(SUITE)
    else:
        suite = "`make test` has not been run by `make results` for these results"
    return {"source": pub.source(*rels), "minutes": f"{pub.minutes(*rels[:3]):.1f} min",
            "suite": suite}
