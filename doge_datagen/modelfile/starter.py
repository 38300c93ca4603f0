"""The starter model ``doge-datagen init FILE.yaml`` writes: every part of the format, commented,
and it runs as written."""

__all__ = ["STARTER"]

STARTER = """\
# A doge-datagen model file. Run it:   doge-datagen run THIS_FILE.yaml --seed 1
# See what it will do without running: doge-datagen analyze THIS_FILE.yaml
# The format's JSON Schema, for editors: doge-datagen schema > doge-model.schema.json
name: shop
states: [browsing, cart, paid]   # a state without outgoing transitions is final
initial_state: browsing
subjects: visitors               # a number, or an expression over the params
tick: 1m                         # the length of a tick: 500ms, 1s, 1m, 1h, 1d (or tick_ms: 60000)
ticks: 1440                      # how many ticks (null: until Ctrl-C)
timestamp_start: 2024-01-01T00:00:00Z
params:                          # set from the command line: --set visitors=500
  visitors: 100
  max_price: 200
subject:                         # a new subject's attributes, each an expression, in order
  visitor_id: index              # index: the subject's number, from 0
  budget: randint(10, max_price) # random functions draw from the subject's own stream
  spent: 0
transitions:
  - trigger: add_to_cart
    from: browsing
    to: cart
    probability:                 # percent per tick; here times a factor per hour of the day (UTC)
      base: 2
      hourly: [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.2, 1.2, 1.2, 1.3,
               1.5, 1.3, 1.2, 1.2, 1.3, 1.5, 1.8, 1.9, 1.8, 1.4, 0.9, 0.5]
    let:                         # values of this event, drawn first
      price: randint(5, max_price)
    when: price <= budget        # false: the move does not happen and nothing is written
    do:                          # assignments to attributes
      - budget -= price
      - spent += price
    sinks: [events]
  - {trigger: leave_cart, from: cart, to: browsing, probability: 20, sinks: [events]}
  - {trigger: pay, from: cart, to: paid, probability: 30, sinks: [events, payments]}
sinks:                           # where events go: any sink URL (doge-datagen demo --help)
  events:
    url: jsonl:out/events.jsonl
    record:                      # field: expression (attributes, timestamp, trigger, ...)
      timestamp: timestamp
      visitor_id: visitor_id
      event: trigger
      budget: budget
  payments:
    url: jsonl:out/payments.jsonl
    record: {timestamp: timestamp, visitor_id: visitor_id, amount: spent, day: date(timestamp)}
"""
