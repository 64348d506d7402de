"""The one declaration the fake reproductions share; only the id differs."""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, Reproduction


@dataclass(frozen=True)
class Config:
    steps: int = 3
    seeds: int = 3
    scale: float = 1.0
    label: str = "x"
    flag: bool = False


def declare(rep_id: str, timeout_s: float = 120) -> Reproduction:
    return Reproduction(
        id=rep_id,
        papers=(rep_id,),
        title=f"fake reproduction: {rep_id}",
        config=Config,
        presets={"quick": {}, "full": {"steps": 10}},
        claims=(
            Claim(
                id="value",
                statement="the value is at least one",
                source="§1",
                paper_value="1",
                metric="value",
                rule=AtLeast(1.0),
                kind="finding",
            ),
            Claim(
                id="small",
                statement="the error is small",
                source="Table 1",
                paper_value="0",
                metric="error",
                rule=AtMost(0.1),
                kind="check",
            ),
        ),
        timeout_s=timeout_s,
    )
