"""Model files of several populations: the format (entity tables, references, messages) and
its errors, each one line ``FILE:LINE:COLUMN: message``, refused before any sink opens."""

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import doge_datagen
from doge_datagen.modelfile import ModelFileError
from doge_datagen.populations import World

MODEL = """\
name: market
tick: 1m
ticks: 300
seed: 3
params:
  buyers: 40
populations:
  products:
    size: 50
    key: sku
    subject:
      sku: f"P{index:03d}"
      price: randint(1, 100)
      weight: index % 5
    sinks: [catalogue]
  merchants:
    size: 5
    key: merchant_id
    subject:
      merchant_id: index + 10
      revenue: 0
    states: [open]
    transitions:
      - {trigger: idle, from: open, to: open, probability: 1}
    receive:
      sale:
        do:
          - revenue += message.amount
        sinks: [sales]
  buyers:
    size: buyers
    key: buyer_id
    subject:
      buyer_id: index
      spent: 0
      last_sku: "''"
    states: [looking, done]
    transitions:
      - trigger: buy
        from: looking
        to: looking
        probability: 20
        let:
          product: pick('products', zipf=1.2)
          shop: pick('merchants', by='revenue')
        when: product.price < 90
        do:
          - spent += product.price
          - last_sku = product.key
        send:
          to: ref('merchants', product.weight)
          kind: sale
          amount: product.price
          sku: product.key
        sinks: [purchases]
      - {trigger: finish, from: looking, to: done, probability: 1}
sinks:
  catalogue:
    url: jsonl:OUT/catalogue.jsonl
    record: {sku: sku, price: price, at: tick}
  purchases:
    url: jsonl:OUT/purchases.jsonl
    record: {buyer_id: buyer_id, sku: last_sku, spent: spent}
  sales:
    url: jsonl:OUT/sales.jsonl
    record:
      merchant_id: merchant_id
      sku: message.sku
      amount: message.amount
      buyer: message.sender.key
      revenue: revenue
"""


def _write(tmp_path: Path, text: str) -> Tuple[Path, Path]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    path = tmp_path / "model.yaml"
    path.write_text(text.replace("OUT/", f"{out}/"))
    return path, out


def _rows(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_entities_references_and_messages(tmp_path):
    path, out = _write(tmp_path, MODEL.replace("by='revenue'", "by='merchant_id'"))
    world = doge_datagen.load(str(path))
    assert isinstance(world, World)
    assert sorted(world.populations) == ["buyers", "merchants", "products"]
    assert world.populations["products"].entities
    summary = world.start()
    catalogue = _rows(out / "catalogue.jsonl")
    purchases = _rows(out / "purchases.jsonl")
    sales = _rows(out / "sales.jsonl")
    assert [row["sku"] for row in catalogue] == [f"P{i:03d}" for i in range(50)]
    assert {row["at"] for row in catalogue} == {0}
    price = {row["sku"]: row["price"] for row in catalogue}
    assert purchases and len(sales) == len(purchases)
    assert all(row["sku"] in price for row in purchases)
    # Every sale goes to the merchant ref('merchants', weight) names, with the product's price.
    weight = {f"P{i:03d}": i % 5 for i in range(50)}
    assert all(row["merchant_id"] == weight[row["sku"]] + 10 for row in sales)
    assert all(row["amount"] == price[row["sku"]] < 90 for row in sales)
    assert sum(s.revenue for s in world.subjects[:5]) == sum(price[r["sku"]] for r in purchases)
    assert summary.messages["delivered"] == len(sales)
    assert world.message_edges == [("buyers", "buy", "merchants", "sale")]


def test_a_pick_by_an_attribute_and_the_same_events_again(tmp_path):
    path, out = _write(tmp_path, MODEL)
    # by='revenue': every merchant starts at 0, so there is nothing to pick.
    with pytest.raises(Exception, match="every subject has revenue = 0"):
        doge_datagen.load(str(path)).start()
    path, out = _write(tmp_path, MODEL.replace("by='revenue'", "by='merchant_id'"))
    doge_datagen.load(str(path)).start()
    first = (out / "sales.jsonl").read_text()
    doge_datagen.load(str(path)).start()
    assert (out / "sales.jsonl").read_text() == first


def _place(text: str, needle: str) -> Tuple[int, int]:
    at = text.index(needle)
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


def _refused(tmp_path: Path, replace: str, by: str, at: str) -> ModelFileError:
    """The model with ``replace`` made ``by`` is refused at the first ``at`` of the new text."""
    assert replace in MODEL, replace
    text = MODEL.replace(replace, by, 1)
    path, out = _write(tmp_path, text)
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(str(path))
    assert os.listdir(out) == []
    error = refused.value
    assert "\n" not in str(error)
    assert str(error).startswith(f"{path}:{error.line}:{error.column}: ")
    assert (error.line, error.column) == _place(path.read_text(), at), str(error)
    return error


def test_an_unknown_population_in_pick(tmp_path):
    error = _refused(tmp_path, "pick('products', zipf=1.2)", "pick('prodcts', zipf=1.2)",
                     "pick('prodcts'")  # fmt: skip
    assert error.message == (
        "population 'buyers': transition 'buy': pick(): no population 'prodcts'; the model's: "
        "products, merchants, buyers in let (did you mean 'products'?)"
    )


def test_a_population_name_in_pick_is_literal(tmp_path):
    error = _refused(tmp_path, "pick('products', zipf=1.2)", "pick(last_sku)", "pick(last_sku)")
    assert "pick() takes the name of a population, in quotes, first" in error.message


def test_an_unknown_attribute_of_a_picked_subject(tmp_path):
    error = _refused(tmp_path, "when: product.price < 90", "when: product.prize < 90",
                     "product.prize")  # fmt: skip
    assert error.message == (
        "population 'buyers': transition 'buy': product has no attribute 'prize' (it has "
        "index, key, price, sku, weight) in when (did you mean 'product.price'?)"
    )


def test_pick_by_an_attribute_the_population_does_not_have(tmp_path):
    error = _refused(tmp_path, "by='revenue'", "by='revenu'", "pick('merchants'")
    assert "population 'merchants' has no attribute 'revenu'" in error.message
    assert error.message.endswith("(did you mean 'revenue'?)")


def test_state_names_shared_by_two_populations(tmp_path):
    error = _refused(tmp_path, "states: [looking, done]", "states: [looking, open]",
                     "open]\n    transitions:\n      - trigger: buy")  # fmt: skip
    assert error.message == (
        "population 'buyers': state 'open' is a state of population 'merchants' too; the "
        "populations of a model have states of different names"
    )


def test_a_send_to_a_population_without_receive(tmp_path):
    error = _refused(tmp_path, "to: ref('merchants', product.weight)",
                     "to: pick('buyers')", "to: pick('buyers')")  # fmt: skip
    assert error.message == (
        "population 'buyers': send 'sale' to population 'buyers', which has no receive: block"
    )


def test_a_send_of_a_kind_the_population_does_not_receive(tmp_path):
    error = _refused(tmp_path, "kind: sale", "kind: sales", "to: ref(")
    assert error.message == (
        "population 'buyers': send 'sales' to population 'merchants', which receives sale "
        "(did you mean 'sale'?)"
    )


def test_a_send_to_something_that_is_not_a_subject(tmp_path):
    error = _refused(tmp_path, "to: ref('merchants', product.weight)", "to: spent",
                     "spent\n")  # fmt: skip
    assert error.message.startswith("population 'buyers': transition 'buy': send: to must be a")


def test_an_unknown_field_of_a_message(tmp_path):
    error = _refused(tmp_path, "revenue += message.amount", "revenue += message.amont",
                     "revenue += message.amont")  # fmt: skip
    assert error.message == (
        "population 'merchants': receive 'sale': message has no attribute 'amont' (it has "
        "amount, kind, receiver, sender, sent_at, sku) in do (did you mean 'message.amount'?)"
    )


def test_message_outside_the_records_of_messages(tmp_path):
    error = _refused(tmp_path, "sku: last_sku, spent", "sku: message.sku, spent",
                     "message.sku, spent")  # fmt: skip
    assert error.message == "sink 'purchases': field 'sku': unknown name 'message'"


def test_a_kept_subject_is_refused(tmp_path):
    error = _refused(tmp_path, "- last_sku = product.key", "- last_sku = product",
                     "last_sku = product\n")  # fmt: skip
    assert "do 'last_sku' holds a subject; keep or send a value of it" in error.message


def test_an_attribute_chain_beyond_a_subject_is_refused(tmp_path):
    error = _refused(tmp_path, "when: product.price < 90", "when: product.price.real < 90",
                     "product.price.real")  # fmt: skip
    assert "product.price is a value, not a subject: it has no .real" in error.message
    error = _refused(tmp_path, "when: product.price < 90", "when: product.__class__ < 90",
                     "product.__class__")  # fmt: skip
    assert "attribute names starting with '_' are not allowed" in error.message
    error = _refused(tmp_path, "when: product.price < 90", "when: product.population < 90",
                     "product.population")  # fmt: skip
    assert "product has no attribute 'population'" in error.message


def test_a_top_level_key_of_a_population(tmp_path):
    error = _refused(tmp_path, "ticks: 300\n", "ticks: 300\nstates: [a]\n", "states: [a]")
    assert error.message == (
        "model: 'states' belongs to a population in a model with populations (give it under "
        "populations: NAME:)"
    )


def test_states_of_an_entity_table(tmp_path):
    error = _refused(tmp_path, "    sinks: [catalogue]", "    states: [x]", "states: [x]")
    assert error.message.startswith("population 'products': 'states' needs transitions")


def test_an_undefined_sink_of_a_population(tmp_path):
    error = _refused(tmp_path, "sinks: [catalogue]", "sinks: [catalog]", "catalog]")
    assert error.message == (
        "population 'products': undefined sink 'catalog' (did you mean 'catalogue'?)"
    )


def test_a_key_that_is_not_an_attribute(tmp_path):
    error = _refused(tmp_path, "key: sku", "key: skus", "skus")
    assert error.message == "population 'products': key: no attribute 'skus' (did you mean 'sku'?)"


def test_an_attribute_with_a_taken_name(tmp_path):
    error = _refused(tmp_path, "      weight: index % 5", "      key: index % 5", "key: index")
    assert error.message.startswith("population 'products': attribute 'key': the name means")


def test_a_population_needs_a_size(tmp_path):
    error = _refused(tmp_path, "    size: 5\n", "\n", "key: merchant_id")
    assert error.message == "population 'merchants' needs 'size' (how many subjects)"


def test_a_file_without_populations_is_one_population():
    text = (Path(__file__).resolve().parents[2] / "examples" / "banking.yaml").read_text()
    from doge_datagen.modelfile.builder import read_model

    assert read_model(text).populations == {}


def test_the_json_schema_takes_the_examples_of_populations_and_refuses_a_mix():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from doge_datagen.cli.modelfile import schema_text

    schema = json.loads(schema_text())
    examples = Path(__file__).resolve().parents[2] / "examples"
    for name in ("shop.yaml", "payments.yaml"):
        text = (examples / name).read_text()
        # as an editor sees it: a date is a string
        jsonschema.validate(json.loads(json.dumps(yaml.safe_load(text), default=str)), schema)
    model = yaml.safe_load(MODEL)
    jsonschema.validate(model, schema)
    mixed = dict(model, states=["a"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(mixed, schema)
    model["populations"]["buyers"]["transitions"][0]["sned"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(model, schema)


WHEN = "when: product.price < 90"
# Escapes through the names a model of populations adds: picked subjects, pick, ref, send,
# message. Each is refused when the file is checked, before any sink opens.
ESCAPES = [
    (WHEN, "when: product.__class__"),
    (WHEN, "when: product.population.world"),
    (WHEN, "when: product.subject"),
    (WHEN, "when: product._subject"),
    (WHEN, "when: pick('products').__class__"),
    (WHEN, "when: pick('products').price"),
    (WHEN, "when: pick"),
    (WHEN, "when: pick.__self__"),
    (WHEN, "when: pick('products', by='__class__')"),
    (WHEN, "when: pick('products', zipf=random())"),
    (WHEN, "when: pick('products', zipf=spent)"),
    (WHEN, "when: pick('products', zipf=-1)"),
    (WHEN, "when: pick('products', where=1)"),
    (WHEN, "when: pick(str('products'))"),
    (WHEN, "when: ref('products')"),
    (WHEN, "when: _send(product, 'sale')"),
    (WHEN, "when: send(product, 'sale')"),
    (WHEN, "when: message"),
    ("revenue += message.amount", "revenue += message.payload"),
    ("revenue += message.amount", "revenue += message.sender.population"),
    ("revenue += message.amount", "revenue += message.sender.__class__"),
    ("revenue += message.amount", "revenue += message.receiver.subject"),
    ("sku: message.sku", "sku: message.__class__"),
    ("sku: message.sku", "sku: message.sender.population.world"),
    ("kind: sale", "kind: __class__"),
    ("sku: product.key", "__class__: product.key"),
    ("sku: product.key", "sender: product.key"),
]


@pytest.mark.parametrize("replace, by", ESCAPES, ids=[b for _, b in ESCAPES])
def test_an_escape_through_populations_is_refused(tmp_path, replace, by):
    assert replace in MODEL, replace
    path, out = _write(tmp_path, MODEL.replace(replace, by, 1))
    with pytest.raises(ModelFileError):
        doge_datagen.load(str(path))
    assert os.listdir(out) == []


PING = """\
name: ping
tick: 1s
ticks: 100
seed: 5
populations:
  pingers:
    size: 10
    key: pid
    subject: {pid: index, sent: 0, answered: 0}
    states: [live]
    transitions:
      - trigger: ping
        from: live
        to: live
        probability: 30
        let:
          other: pick('pongers')
        do:
          - sent += 1
        send:
          - {to: other, kind: ping, n: sent}
          - {to: "ref('pongers', 0)", kind: ping, n: -1}
    receive:
      pong:
        do:
          - answered += 1
        sinks: [pongs]
  pongers:
    size: 3
    subject: {name: 'f"pong{index}"', got: 0}
    states: [up]
    transitions:
      - {trigger: wait, from: up, to: up, probability: 1}
    receive:
      ping:
        when: message.n > 0 and message.n % 2 == 0
        do:
          - got += 1
        send: {to: message.sender, kind: pong, n: message.n}
sinks:
  pongs:
    url: jsonl:OUT/pongs.jsonl
    record: {pid: pid, n: message.n, at: tick, sent_at: message.sent_at, from: message.sender.key}
"""


def test_replies_vetoed_messages_and_the_tick_a_message_is_handled_at(tmp_path):
    path, out = _write(tmp_path, PING)
    world = doge_datagen.load(str(path))
    summary = world.start()
    pongs = _rows(out / "pongs.jsonl")
    pingers, pongers = world.subjects[:10], world.subjects[10:]
    sent = sum(p.sent for p in pingers)
    assert sent > 50
    # Every ping is sent twice (the second with n = -1, always dropped); the even ones are
    # answered, a tick later, and the answers handled a tick after that: those sent when the
    # run ends are still on their way.
    answered = sum(p.answered for p in pingers)
    assert answered == len(pongs)
    assert sum(p.got for p in pongers) == answered + summary.messages["undelivered"]
    assert summary.messages["sent"] == 2 * sent + sum(p.got for p in pongers)
    assert summary.messages["vetoed"] >= sent
    assert pongs and all(r["n"] % 2 == 0 and r["from"] in range(3) for r in pongs)
    assert all(r["at"] == r["sent_at"] + 1 for r in pongs)
    assert ("pingers", "ping", "pongers", "ping") in world.message_edges


def test_a_comma_in_a_flow_mapping_is_explained(tmp_path):
    quoted = "{to: \"ref('pongers', 0)\", kind: ping, n: -1}"
    assert quoted in PING
    path, out = _write(tmp_path, PING.replace(quoted, "{to: ref('pongers', 0), kind: ping, n: -1}"))
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(str(path))
    assert refused.value.message == (
        "population 'pingers': transition 'ping': send: to: not an expression: '(' was never "
        "closed (in YAML's {...}, quote an expression that has a comma)"
    )
    assert (refused.value.line, refused.value.column) == _place(path.read_text(), "ref('pongers'")


def test_a_pick_from_no_population_is_named_before_the_send_that_uses_it(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "examples" / "payments.yaml").read_text()
    path = tmp_path / "payments.yaml"
    path.write_text(text.replace("pick('users')", "pick('user')"))
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(str(path))
    assert refused.value.message == (
        "population 'users': transition 'transfer': pick(): no population 'user'; the model's: "
        "users in let (did you mean 'users'?)"
    )
    assert (refused.value.line, refused.value.column) == _place(path.read_text(), "pick('user')")


def test_an_unknown_key_of_a_population_and_of_a_receive_block(tmp_path):
    error = _refused(tmp_path, "    size: 5\n", "    siez: 5\n", "siez")
    assert error.message == "population 'merchants': unknown key 'siez' (did you mean 'size'?)"
    error = _refused(tmp_path, "        sinks: [sales]", "        sink: [sales]", "sink: [sales]")
    assert error.message == (
        "population 'merchants': receive 'sale': unknown key 'sink' (did you mean 'sinks'?)"
    )


def test_each_kind_of_message_goes_to_the_sinks_of_its_receive_block(tmp_path):
    text = MODEL.replace("by='revenue'", "by='merchant_id'")
    text = text.replace(
        """        sinks: [sales]
  buyers:""",
        """        sinks: [sales]
      refund:
        do:
          - revenue -= message.amount
        sinks: [refunds]
  buyers:""",
    )
    text = text.replace(
        """      - {trigger: finish, from: looking, to: done, probability: 1}""",
        """      - trigger: regret
        from: looking
        to: looking
        probability: 5
        send: {to: "ref('merchants', 0)", kind: refund, amount: 1}
      - {trigger: finish, from: looking, to: done, probability: 1}""",
    )
    text += """  refunds:
    url: jsonl:OUT/refunds.jsonl
    record: {merchant_id: merchant_id, amount: message.amount, kind: trigger}
"""
    path, out = _write(tmp_path, text)
    world = doge_datagen.load(str(path))
    summary = world.start()
    sales = _rows(out / "sales.jsonl")
    refunds = _rows(out / "refunds.jsonl")
    assert sales and refunds
    assert all(row["merchant_id"] == 10 and row["kind"] == "refund" for row in refunds)
    assert all("sku" in row for row in sales)  # only sales in the sales sink
    assert summary.messages["delivered"] == len(sales) + len(refunds)
    # the summary counts the rows and the message events beside the moves
    per_sink = summary.events_per_sink
    assert per_sink[next(k for k in per_sink if "catalogue" in k)] == 50
    assert per_sink[next(k for k in per_sink if "refunds" in k)] == len(refunds)
