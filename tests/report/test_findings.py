"""The reference study's conclusions (colorize/report/findings.py) name real configuration keys."""

from colorize.report.findings import REFERENCE, Claim, Conclusion
from colorize.tracking.store import flatten
from colorize.config import plain


def test_every_reference_claim_compares_configurations_by_keys_a_run_records(make_cfg):
    presets = {"layers", "kernel_size", "kernels", "lr", "further", "*"}
    for conclusion in REFERENCE:
        assert isinstance(conclusion, Conclusion) and conclusion.preset in presets and conclusion.reference
        for claim in conclusion.claims:
            assert isinstance(claim, Claim) and claim.winner != claim.loser
            params = set(flatten(plain(make_cfg()))) | {"model.layers"}
            assert set(claim.winner) | set(claim.loser) <= params, claim
    assert sum(len(c.claims) for c in REFERENCE) >= 10 and any(c.diverges for c in REFERENCE)
