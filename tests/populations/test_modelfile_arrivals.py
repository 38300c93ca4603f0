"""Arrivals in a model file of several populations: subjects that come during the run get
their row when they arrive, before any record of theirs."""

import json
from pathlib import Path

import doge_datagen

MODEL = """\
ticks: 200
seed: 2
populations:
  shops:
    size: 4
    key: shop_id
    subject: {shop_id: index + 1}
    sinks: [shops]
  visitors:
    size: 3
    arrivals: 0.5
    key: visitor_id
    subject: {visitor_id: index + 1, shop: 0}
    sinks: [visitors]
    states: [out, inside]
    transitions:
      - trigger: enter
        from: out
        to: inside
        probability: 10
        let:
          place: pick('shops')
        do:
          - shop = place.key
        sinks: [visits]
      - {trigger: leave, from: inside, to: out, probability: 20}
sinks:
  shops: {url: "jsonl:OUT/shops.jsonl", record: {shop_id: shop_id}}
  visitors: {url: "jsonl:OUT/visitors.jsonl", record: {at: timestamp, visitor_id: visitor_id}}
  visits: {url: "jsonl:OUT/visits.jsonl", record: {at: timestamp, visitor_id: visitor_id, shop_id: shop}}
"""  # noqa: E501


def test_arrived_subjects_get_their_rows_before_their_records(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    world = doge_datagen.load(MODEL.replace("OUT/", f"{out}/"))
    world.start()

    def rows(name: str) -> list:
        return [json.loads(line) for line in Path(out / f"{name}.jsonl").read_text().splitlines()]

    visitors, visits = rows("visitors"), rows("visits")
    assert len(visitors) == len(world.subjects) > 3 + 50  # 0.5 a tick over 200 ticks
    assert [v["visitor_id"] for v in visitors] == list(range(1, len(visitors) + 1))
    arrived = {v["visitor_id"]: v["at"] for v in visitors}
    assert visits and all(arrived[v["visitor_id"]] <= v["at"] for v in visits)
    assert {v["shop_id"] for v in visits} <= {1, 2, 3, 4}
